# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role's ``meta/argument_specs.yml`` agrees with its ``defaults/main.yml``.

``defaults/main.yml`` is the source of truth for default values; the argument specs
document and validate them. For every role under ``roles/``:

- the ``main`` entry point has exactly one option per variable of ``defaults/main.yml``;
- every option of every entry point has a ``type`` (and ``elements`` when it is a list);
- an option whose variable is in ``defaults/main.yml`` declares the same default, value
  and type alike (``1`` is not ``1.0``, ``"1"`` nor ``true``); an option without a
  ``default`` only matches a variable that defaults to null;
- an option that is not in ``defaults/main.yml`` declares no default (it would never apply).
"""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "roles"
TYPES = {"str", "list", "dict", "bool", "int", "float", "path", "raw", "jsonarg", "json", "bytes", "bits"}
MISSING = object()


class _Loader(yaml.SafeLoader):
    """A safe loader that also reads the tags Ansible adds to YAML (``!unsafe``, ``!vault``)."""


def _construct_tagged(loader, node):
    # The tag only changes how Ansible templates the value; the value is what is compared.
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


for _tag in ("!unsafe", "!vault", "!vault-encrypted"):
    _Loader.add_constructor(_tag, _construct_tagged)


def load_yaml(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def same(left, right):
    """Equal in value and in type, all the way down."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return left == right


def _option_problems(where, name, spec):
    problems = []
    if not isinstance(spec, dict):
        return ["%s: option %s is not a mapping" % (where, name)]
    kind = spec.get("type")
    if kind is None:
        problems.append("%s: option %s has no type" % (where, name))
    elif kind not in TYPES:
        problems.append("%s: option %s has an unknown type %r" % (where, name, kind))
    if kind == "list" and "elements" not in spec:
        problems.append("%s: option %s is a list without elements" % (where, name))
    for sub, sub_spec in (spec.get("options") or {}).items():
        problems += _option_problems(where, "%s.%s" % (name, sub), sub_spec)
    return problems


def role_problems(role_dir):
    """Every way ``role_dir``'s argument specs disagree with its defaults, as messages."""
    role_dir = pathlib.Path(role_dir)
    specs_file = role_dir / "meta" / "argument_specs.yml"
    defaults_file = role_dir / "defaults" / "main.yml"
    if not specs_file.is_file():
        return ["%s: meta/argument_specs.yml is missing" % role_dir.name]
    defaults = (load_yaml(defaults_file) if defaults_file.is_file() else None) or {}
    entry_points = (load_yaml(specs_file) or {}).get("argument_specs") or {}
    if "main" not in entry_points:
        return ["%s: argument_specs has no main entry point" % role_dir.name]
    problems = []
    for entry, body in entry_points.items():
        where = "%s/%s" % (role_dir.name, entry)
        options = (body or {}).get("options") or {}
        if entry == "main":
            for name in sorted(set(defaults) - set(options)):
                problems.append("%s: %s is in defaults/main.yml but has no option" % (where, name))
            for name in sorted(set(options) - set(defaults)):
                problems.append("%s: option %s is not in defaults/main.yml" % (where, name))
        for name, spec in options.items():
            problems += _option_problems(where, name, spec)
            if not isinstance(spec, dict):
                continue
            declared = spec.get("default", MISSING)
            if name in defaults:
                expected = defaults[name]
                if declared is MISSING and expected is not None:
                    problems.append("%s: option %s has no default; defaults/main.yml has %r"
                                    % (where, name, expected))
                elif declared is not MISSING and not same(declared, expected):
                    problems.append("%s: option %s defaults to %r (%s) in argument_specs but to %r (%s) in "
                                    "defaults/main.yml" % (where, name, declared, type(declared).__name__,
                                                           expected, type(expected).__name__))
            elif declared is not MISSING:
                problems.append("%s: option %s has a default but no variable in defaults/main.yml"
                                % (where, name))
    return problems


ALL_ROLES = sorted(p for p in ROLES.iterdir() if p.is_dir()) if ROLES.is_dir() else []


@pytest.mark.parametrize("role_dir", ALL_ROLES, ids=[p.name for p in ALL_ROLES])
def test_argument_specs_match_defaults(role_dir):
    assert role_problems(role_dir) == []


# -- the checker itself ------------------------------------------------------------------
def _write_role(tmp_path, defaults, specs):
    role = tmp_path / "demo"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text(defaults, encoding="utf-8")
    (role / "meta" / "argument_specs.yml").write_text(specs, encoding="utf-8")
    return role


SPECS = """
argument_specs:
  main:
    short_description: demo
    options:
      demo_replicas: {type: int, default: 3}
      demo_labels: {type: dict, default: {a: b}}
      demo_class: {type: str}
      demo_cmd: {type: list, elements: str, default: [!unsafe "{{x}}"]}
"""


def test_checker_accepts_agreement(tmp_path):
    role = _write_role(tmp_path, "demo_replicas: 3\ndemo_labels: {a: b}\ndemo_class: null\n"
                                 "demo_cmd: [!unsafe '{{x}}']\n", SPECS)
    assert role_problems(role) == []


@pytest.mark.parametrize("defaults, expected", [
    ("demo_replicas: 2\ndemo_labels: {a: b}\ndemo_class: null\ndemo_cmd: ['{{x}}']\n", "demo_replicas defaults to 3"),
    ("demo_replicas: '3'\ndemo_labels: {a: b}\ndemo_class: null\ndemo_cmd: ['{{x}}']\n", "(int)"),
    ("demo_replicas: 3\ndemo_labels: {a: c}\ndemo_class: null\ndemo_cmd: ['{{x}}']\n", "demo_labels"),
    ("demo_replicas: 3\ndemo_labels: {a: b}\ndemo_class: gp3\ndemo_cmd: ['{{x}}']\n", "demo_class has no default"),
    ("demo_replicas: 3\ndemo_labels: {a: b}\ndemo_class: null\ndemo_cmd: ['{{x}}']\ndemo_extra: 1\n",
     "demo_extra is in defaults/main.yml but has no option"),
    ("demo_replicas: 3\ndemo_labels: {a: b}\ndemo_class: null\n", "option demo_cmd is not in defaults"),
], ids=["value", "type", "nested-value", "missing-default", "variable-without-option", "option-without-variable"])
def test_checker_finds_disagreement(tmp_path, defaults, expected):
    problems = role_problems(_write_role(tmp_path, defaults, SPECS))
    assert any(expected in p for p in problems), problems


def test_checker_wants_types_and_elements(tmp_path):
    specs = ("argument_specs:\n  main:\n    options:\n      demo_a: {default: 1}\n"
             "      demo_b: {type: list, default: []}\n")
    problems = role_problems(_write_role(tmp_path, "demo_a: 1\ndemo_b: []\n", specs))
    assert any("demo_a has no type" in p for p in problems)
    assert any("demo_b is a list without elements" in p for p in problems)


def test_checker_wants_argument_specs(tmp_path):
    role = tmp_path / "bare"
    (role / "defaults").mkdir(parents=True)
    (role / "defaults" / "main.yml").write_text("bare_x: 1\n", encoding="utf-8")
    assert role_problems(role) == ["bare: meta/argument_specs.yml is missing"]
