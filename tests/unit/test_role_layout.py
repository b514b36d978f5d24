# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role names its variables after itself and checks its input before it changes anything."""

from __future__ import annotations

import pathlib

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "roles"
ALL_ROLES = sorted(p for p in ROLES.iterdir() if (p / "tasks" / "main.yml").is_file()) if ROLES.is_dir() else []


class _Loader(yaml.SafeLoader):
    """Reads Ansible's ``!unsafe`` tag as the plain value."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node)
                        if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node, deep=True))


def _load(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


@pytest.mark.parametrize("role_dir", ALL_ROLES, ids=[p.name for p in ALL_ROLES])
def test_variables_carry_the_role_prefix(role_dir):
    prefix = role_dir.name + "_"
    defaults = _load(role_dir / "defaults" / "main.yml") or {}
    assert [name for name in defaults if not name.startswith(prefix)] == []
    internal = role_dir / "vars" / "main.yml"
    if internal.is_file():
        assert [name for name in (_load(internal) or {}) if not name.startswith("_" + prefix)] == []


@pytest.mark.parametrize("role_dir", ALL_ROLES, ids=[p.name for p in ALL_ROLES])
def test_tasks_start_with_preflight(role_dir):
    tasks = _load(role_dir / "tasks" / "main.yml")
    first = tasks[0]
    target = first.get("ansible.builtin.import_tasks") or first.get("ansible.builtin.include_tasks")
    assert target == "preflight.yml", "tasks/main.yml of %s starts with %r" % (role_dir.name, first.get("name"))
    assert (role_dir / "tasks" / "preflight.yml").is_file()
