# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helm values: merged from every source in helm's order, compared, and masked.

Every value source (files, ``values``, ``set_values``) is merged here and handed to
helm as one values file, so what helm stores as the release's values is exactly
what the next run compares against.
"""

from __future__ import annotations

__metaclass__ = type

import base64
import copy
import json
import re
from typing import Any, Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._masking import MASK, mask_secret_values
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Params

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False


def parse_path(path: str, field: str = "set_values") -> list[str | int]:
    """``a.b\\.c[0].d`` -> ``['a', 'b.c', 0, 'd']``."""
    parts: list[str | int] = []
    buf, i = "", 0
    if not path:
        raise InvalidInput(field, "empty key path")
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path):
            buf += path[i + 1]
            i += 2
            continue
        if char == ".":
            if buf:
                parts.append(buf)
            elif not parts or not isinstance(parts[-1], int):
                raise InvalidInput(field, "empty key in path %s" % path)
            buf = ""
        elif char == "[":
            end = path.find("]", i)
            if end < 0 or not path[i + 1:end].isdigit():
                raise InvalidInput(field, "bad list index in path %s" % path)
            if buf:
                parts.append(buf)
                buf = ""
            parts.append(int(path[i + 1:end]))
            i = end
        else:
            buf += char
        i += 1
    if buf:
        parts.append(buf)
    return parts


def set_path(values: dict[str, Any], parts: list[str | int], value: Any) -> None:
    node = values
    for pos, key in enumerate(parts):
        last = pos == len(parts) - 1
        nxt: Any = None if last else ([] if isinstance(parts[pos + 1], int) else {})
        if isinstance(key, int):
            if not isinstance(node, list):
                raise InvalidInput("set_values", "%s is not a list" % key)
            while len(node) <= key:
                node.append(None)
        elif not isinstance(node, dict):
            raise InvalidInput("set_values", "cannot set key %s below a scalar" % key)
        if last:
            node[key] = value
        else:
            if not isinstance(node[key] if isinstance(key, int) else node.get(key), (dict, list)):
                node[key] = nxt
            node = node[key]


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's merge of values sources: maps merge recursively, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _StrTimestampLoader(yaml.SafeLoader if HAS_YAML else object):  # type: ignore[misc]
    """Keep timestamps as strings, as helm's YAML reader does."""


if HAS_YAML:
    _StrTimestampLoader.add_constructor(
        "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_values_file(path: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            data = yaml.load(handle, Loader=_StrTimestampLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput("values_files", "cannot read %s: %s" % (path, exc))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput("values_files", "%s does not hold a mapping" % path)
    return data


def _set_value(item: dict[str, Any]) -> Any:
    vtype, value = item.get("value_type") or "raw", item.get("value")
    if vtype == "string":
        return "" if value is None else (value if isinstance(value, str) else json.dumps(value)
                                         if isinstance(value, (dict, list)) else str(value).lower()
                                         if isinstance(value, bool) else str(value))
    if vtype == "json":
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InvalidInput("set_values", "%s: value is not JSON: %s" % (item.get("path"), exc))
    if vtype == "file":
        try:
            with open(str(value)) as handle:
                return handle.read()
        except OSError as exc:
            raise InvalidInput("set_values", "%s: cannot read %s: %s" % (item.get("path"), value, exc))
    return value


def merged_values(params: Params) -> dict[str, Any]:
    """values_files (in order), then values, then set_values: later wins, as with -f and --set."""
    result: dict[str, Any] = {}
    for path in params.get("values_files") or []:
        result = deep_merge(result, load_values_file(path))
    result = deep_merge(result, params.get("values") or {})
    for item in params.get("set_values") or []:
        set_path(result, parse_path(item["path"]), _set_value(item))
    return normalise(result)


def normalise(value: Any) -> Any:
    """JSON-shaped copy; whole floats become ints (helm reads numbers as float64)."""
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def values_equal(deployed: Any, wanted: Any) -> bool:
    return normalise(deployed or {}) == normalise(wanted or {})


def sensitive_leaves(values: Any, paths: Iterable[str]) -> list[str]:
    """String forms of the values under ``paths`` (for scrubbing text)."""
    out = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)
        elif node is not None and not isinstance(node, bool):
            text = str(node)
            if len(text) >= 3:
                out.add(text)

    for path in paths or []:
        node = values
        for key in parse_path(path, "sensitive_values"):
            if isinstance(key, int):
                node = node[key] if isinstance(node, list) and key < len(node) else None
            else:
                node = node.get(key) if isinstance(node, dict) else None
        collect(node)
    return sorted(out, key=len, reverse=True)


def mask_values(values: Any, paths: Iterable[str]) -> Any:
    out = copy.deepcopy(values)
    for path in paths or []:
        parts = parse_path(path, "sensitive_values")
        node = out
        for key in parts[:-1]:
            node = (node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node)
                    else node.get(key) if isinstance(node, dict) and not isinstance(key, int) else None)
            if node is None:
                break
        last = parts[-1]
        if isinstance(node, dict) and last in node:
            node[last] = MASK
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = MASK
    return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace secret strings (and their base64 forms) in free text."""
    if not text:
        return text
    for secret in secrets or []:
        text = text.replace(secret, MASK)
        text = text.replace(base64.b64encode(secret.encode("utf-8")).decode("ascii"), MASK)
    return text


def mask_manifest(manifest: str | None, secrets: Iterable[str]) -> str:
    """A manifest for diffs: Secret values masked, sensitive strings scrubbed."""
    if not manifest:
        return ""
    docs = re.split(r"(?m)^---\s*$", manifest)
    out = []
    for doc in docs:
        if not doc.strip():
            continue
        try:
            obj = yaml.safe_load(doc)
        except yaml.YAMLError:
            obj = None
        if isinstance(obj, dict) and obj.get("kind") == "Secret":
            obj = mask_secret_values(obj)
            comments = "".join(line + "\n" for line in doc.strip("\n").splitlines() if line.startswith("#"))
            doc = comments + yaml.safe_dump(obj, default_flow_style=False, sort_keys=False)
        out.append(scrub(doc.strip("\n"), secrets))
    return "".join("---\n%s\n" % doc for doc in out)
