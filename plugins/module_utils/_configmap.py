# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ConfigMaps built from literals, files, env files, directories and inline data.

The sources follow ``kubectl create configmap --from-*``: UTF-8 content goes into
``data``, anything else into ``binaryData`` (base64), keys follow the API server's
rules and a key defined twice is an error. Optionally the content hash becomes a
name suffix (each content gets its own ConfigMap, old generations are pruned) or an
annotation, so consumers roll when the configuration changes.
"""

from __future__ import annotations

__metaclass__ = type

import base64
import hashlib
import json
import os
import re
from typing import Any, Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._apply import (
    ApplyResult,
    apply_object,
    delete_object,
    make_diff,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    ImmutableField,
    InvalidInput,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import is_dns_subdomain
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params
from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import wait_deleted

BASE_LABEL = "datastore.kubernetes/configmap"
GENERATION_ANNOTATION = "datastore.kubernetes/generation"
HASH_ANNOTATION = "datastore.kubernetes/content-hash"
HASH_LENGTH = 10

_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_VALUE_MAX = 63
_RECREATE_DELETE_TIMEOUT = 60


# -- keys and names ---------------------------------------------------------------
def validate_key(key: Any, field: str) -> str:
    """Apply the API server's ConfigMap key rules, naming ``field`` in the error."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(field, "a key must be a non-empty string, got %r" % (key,))
    if len(key) > 253:
        raise InvalidInput(field, "key %r is longer than 253 characters" % key[:40])
    if not _KEY_RE.match(key):
        raise InvalidInput(field, "key %r may only contain letters, digits, '-', '_' and '.'" % key)
    if key in (".", "..") or key.startswith(".."):
        raise InvalidInput(field, "key %r must not be '.' or '..' or start with '..'" % key)
    return key


def validate_name(name: Any, field: str = "name") -> str:
    if not is_dns_subdomain(name):
        raise InvalidInput(field, "%r is not a valid ConfigMap name (lowercase letters, digits, '-' and '.', "
                                  "at most 253 characters, starting and ending with a letter or digit)" % (name,))
    return name


def as_text(value: object) -> str:
    """Literal values are strings in a ConfigMap; YAML booleans become true/false, not True/False."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


# -- sources ----------------------------------------------------------------------
class Content:
    """``data`` and ``binaryData`` being assembled, remembering where each key came from."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.binary: dict[str, str] = {}
        self.origin: dict[str, str] = {}

    def add(self, key: str, value: str, field: str, binary: bool = False) -> None:
        validate_key(key, field)
        if key in self.origin:
            raise InvalidInput(field, "key %r is already defined by %s; every key may appear only once"
                                      % (key, self.origin[key]))
        self.origin[key] = field
        if binary:
            self.binary[key] = value
        else:
            self.data[key] = value

    def add_bytes(self, key: str, raw: bytes, field: str) -> None:
        """UTF-8 text goes into data, anything else into binaryData (as kubectl does)."""
        try:
            self.add(key, raw.decode("utf-8"), field)
        except UnicodeDecodeError:
            self.add(key, base64.b64encode(raw).decode("ascii"), field, binary=True)


def _read(path: str, field: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise InvalidInput(field, "cannot read %s: %s" % (path, exc.strerror or exc))


def file_entries(entries: list[Any] | None) -> list[tuple[str, str, str]]:
    """Normalise ``from_file`` items to ``(key, path, field)``."""
    out = []
    for idx, entry in enumerate(entries or []):
        field = "from_file[%d]" % idx
        if isinstance(entry, str):
            path = os.path.expanduser(entry)
            key = os.path.basename(path.rstrip("/"))
        elif isinstance(entry, dict):
            unknown = sorted(set(entry) - {"key", "path"})
            if unknown:
                raise InvalidInput(field, "unknown option(s) %s; use key and path" % ", ".join(unknown))
            if not entry.get("path"):
                raise InvalidInput(field + ".path", "is required")
            path = os.path.expanduser(str(entry["path"]))
            key = entry.get("key") or os.path.basename(path.rstrip("/"))
        else:
            raise InvalidInput(field, "must be a path or a mapping with key and path, got %s" % type(entry).__name__)
        if os.path.isdir(path):
            raise InvalidInput(field, "%s is a directory; use from_dir for directories" % path)
        out.append((key, path, field))
    return out


def parse_env_file(text: str, path: str, field: str) -> list[tuple[str, str, str]]:
    """``KEY=VALUE`` pairs of an env file, read the way ``kubectl --from-env-file`` reads them.

    Leading whitespace is dropped, blank lines and ``#`` comments are skipped, the
    value is everything after the first ``=`` (quotes included). Unlike kubectl, a
    line without ``=`` is an error rather than a lookup in the environment of the
    host running the module, which is rarely what the author meant.
    """
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if lineno == 1 and line.startswith("\ufeff"):
            line = line[1:]
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        where = "%s line %d" % (path, lineno)
        if not sep:
            raise InvalidInput(field, "%s has no '=': write KEY=VALUE" % where)
        if not _ENV_NAME_RE.match(key):
            raise InvalidInput(field, "%s: %r is not a valid variable name" % (where, key))
        pairs.append((key, value, "%s (%s)" % (field, where)))
    return pairs


def dir_files(path: str, field: str) -> list[tuple[str, str]]:
    """Regular files directly in ``path`` (sorted); subdirectories and symlinks are skipped like kubectl does."""
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise InvalidInput(field, "%s is not a directory" % path)
    out = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_file(follow_symlinks=False):
            out.append((entry.name, entry.path))
    return out


def build_content(params: Params) -> tuple[dict[str, str], dict[str, str]]:
    """Assemble ``(data, binaryData)`` from every source option, in a fixed order."""
    content = Content()
    for key, value in (params.get("from_literal") or {}).items():
        content.add(key, as_text(value), "from_literal.%s" % key)
    for key, path, field in file_entries(params.get("from_file")):
        content.add_bytes(key, _read(path, field), field)
    for idx, path in enumerate(params.get("from_env_file") or []):
        field = "from_env_file[%d]" % idx
        path = os.path.expanduser(path)
        raw = _read(path, field)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(field, "%s is not UTF-8 text" % path)
        for key, value, where in parse_env_file(text, path, field):
            content.add(key, value, where)
    for idx, path in enumerate(params.get("from_dir") or []):
        field = "from_dir[%d]" % idx
        for key, fpath in dir_files(path, field):
            content.add_bytes(key, _read(fpath, field), "%s (%s)" % (field, fpath))
    for key, value in (params.get("data") or {}).items():
        content.add(key, as_text(value), "data.%s" % key)
    for key, value in (params.get("binary_data") or {}).items():
        field = "binary_data.%s" % key
        try:
            base64.b64decode(str(value), validate=True)
        except ValueError:
            raise InvalidInput(field, "is not valid base64")
        content.add(key, str(value), field, binary=True)
    return content.data, content.binary


def content_hash(data: dict[str, str], binary: dict[str, str]) -> str:
    """10 hex characters of the sha256 of the sorted content: the same content always gives the same hash."""
    payload = json.dumps({"binaryData": binary, "data": data}, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:HASH_LENGTH]


# -- generations --------------------------------------------------------------------
def generation_of(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(GENERATION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def next_generation(current: Obj | None, others: list[Obj]) -> int:
    """Generation number for the ConfigMap being applied.

    A re-run keeps the number, so nothing changes; content that was current long
    ago and comes back becomes the newest generation again, so pruning keeps it.
    """
    top = max([generation_of(o) for o in others] or [0])
    if current is not None and generation_of(current) > top:
        return generation_of(current)
    return max(top, generation_of(current) if current else 0) + 1


def prune_candidates(others: list[Obj], keep: int) -> list[Obj]:
    """The older generations beyond ``keep`` (which counts the current one), newest first kept."""
    ordered = sorted(others, key=lambda o: (generation_of(o), o["metadata"].get("creationTimestamp") or "",
                                            o["metadata"]["name"]), reverse=True)
    return ordered[max(0, keep - 1):]


# -- the module's work ---------------------------------------------------------------
def desired_object(params: Params, name: str, data: dict[str, str], binary: dict[str, str],
                   extra_labels: dict[str, str] | None = None, extra_annotations: dict[str, str] | None = None) -> Obj:
    labels = {k: as_text(v) for k, v in (params.get("labels") or {}).items()}
    labels.update(extra_labels or {})
    annotations = {k: as_text(v) for k, v in (params.get("annotations") or {}).items()}
    annotations.update(extra_annotations or {})
    meta = {"name": name, "namespace": params["namespace"]}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    if params.get("immutable") is not None:
        obj["immutable"] = params["immutable"]
    return obj


def _immutable_message(obj: Obj, fields: Iterable[str]) -> str:
    ref = "ConfigMap %s/%s" % (obj["metadata"]["namespace"], obj["metadata"]["name"])
    named = ", ".join(sorted(set(f for f in fields if f))) or "data"
    return ("%s: %s cannot change while the ConfigMap is immutable; set hash_suffix=true so every content "
            "gets its own ConfigMap, or on_immutable=recreate to delete and recreate it" % (ref, named))


def _apply(client: KubeClient, obj: Obj, params: Params, check_mode: bool) -> tuple[ApplyResult, bool]:
    """Apply; on an immutable ConfigMap either fail clearly or delete and recreate it."""
    try:
        return apply_object(client, obj, check_mode=check_mode, force=params.get("force_conflicts")), False
    except ImmutableField as exc:
        if params.get("on_immutable") != "recreate":
            raise ImmutableField(_immutable_message(obj, exc.fields), fields=exc.fields)
    meta = obj["metadata"]
    before = client.get("v1", "ConfigMap", meta["name"], meta["namespace"])
    if check_mode:
        # A dry run cannot show the recreated object (the name is taken), so report the manifest.
        return ApplyResult(before, obj, True), True
    if before is not None:
        client.delete("v1", "ConfigMap", meta["name"], meta["namespace"],
                      preconditions={"uid": before["metadata"]["uid"]})
        wait_deleted(client, "v1", "ConfigMap", meta["namespace"], meta["name"], _RECREATE_DELETE_TIMEOUT)
    result = apply_object(client, obj, force=params.get("force_conflicts"))
    return ApplyResult(before, result.after, True), True


def public(obj: Obj | None) -> Obj:
    """The object as returned to the user: everything but managedFields."""
    if not obj:
        return {}
    out = dict(obj)
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return out


def run_present(client: KubeClient, params: Params, check_mode: bool) -> Result:
    base = validate_name(params["name"])
    data, binary = build_content(params)
    digest = content_hash(data, binary)
    annotations = {HASH_ANNOTATION: digest} if params.get("hash_annotation") else {}
    labels = {}
    others = []
    name = base
    if params.get("hash_suffix"):
        if len(base) > _LABEL_VALUE_MAX:
            raise InvalidInput("name", "with hash_suffix the name may have at most %d characters (it is kept "
                                       "in a label), got %d" % (_LABEL_VALUE_MAX, len(base)))
        if params.get("keep_generations", 3) < 1:
            raise InvalidInput("keep_generations", "must be at least 1 (the current ConfigMap is always kept)")
        name = validate_name("%s-%s" % (base, digest))
        labels[BASE_LABEL] = base
        siblings = client.list("v1", "ConfigMap", params["namespace"],
                               label_selector="%s=%s" % (BASE_LABEL, base)).get("items") or []
        current = next((o for o in siblings if o["metadata"]["name"] == name), None)
        others = [o for o in siblings if o["metadata"]["name"] != name]
        annotations[GENERATION_ANNOTATION] = str(next_generation(current, others))

    obj = desired_object(params, name, data, binary, labels, annotations)
    result, recreated = _apply(client, obj, params, check_mode)

    pruned = []
    if params.get("hash_suffix"):
        for old in prune_candidates(others, params.get("keep_generations", 3)):
            pruned.append(old["metadata"]["name"])
            if not check_mode:
                client.delete("v1", "ConfigMap", old["metadata"]["name"], params["namespace"])

    out = {
        "changed": bool(result.changed or pruned),
        "name": name,
        "namespace": params["namespace"],
        "content_hash": digest,
        "configmap": public(result.after),
        "created": bool(result.created),
        "recreated": recreated,
        "pruned": pruned,
    }
    if params.get("_diff"):
        out["diff"] = result.diff()
    return out


def run_absent(client: KubeClient, params: Params, check_mode: bool) -> Result:
    base = validate_name(params["name"])
    namespace = params["namespace"]
    if params.get("hash_suffix"):
        targets = client.list("v1", "ConfigMap", namespace,
                              label_selector="%s=%s" % (BASE_LABEL, base)).get("items") or []
    else:
        live = client.get("v1", "ConfigMap", base, namespace)
        targets = [live] if live else []
    deleted = []
    diffs = []
    for obj in targets:
        changed, prior = delete_object(client, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": obj["metadata"]["name"], "namespace": namespace}}, check_mode=check_mode)
        if changed:
            deleted.append(obj["metadata"]["name"])
            diffs.append(make_diff(prior, None))
    out = {"changed": bool(deleted), "name": base, "namespace": namespace, "deleted": deleted, "pruned": []}
    if params.get("_diff"):
        out["diff"] = diffs if len(diffs) != 1 else diffs[0]
    return out


def run(task: Task, client: KubeClient) -> Result:
    """The ``configmap`` module's work."""
    params = dict(task.params, _diff=task.diff)
    if params.get("state") == "absent":
        return run_absent(client, params, task.check_mode)
    return run_present(client, params, task.check_mode)
