# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply (or deletion) of any number of manifests, with waits.

Every manifest is parsed, checked and mapped to its REST path before the first
write, so bad input changes nothing. Objects go out in input order through
``_apply.apply_objects`` (Namespaces and CRDs first and alone, the rest on a
bounded number of threads sharing one connection pool); waits run concurrently
against one deadline.
"""

from __future__ import annotations

__metaclass__ = type

import os
import time
from typing import Any, Callable, Sequence, cast

from ansible_collections.datastore.kubernetes.plugins.module_utils._apply import (
    BARRIER_KINDS,
    ApplyResult,
    apply_objects,
    delete_object,
    make_diff,
    object_ref,
    validate_manifest,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._batch import run_batch
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    DatastoreError,
    InvalidInput,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._masking import mask_secret_values
from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import (
    READY_PREDICATES,
    wait_deleted,
    wait_ready,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

CRD_KIND = "CustomResourceDefinition"
# After a CRD is Established its kinds show up in discovery almost at once; allow a little slack.
_DISCOVERY_GRACE = 10.0


class Item:
    """One manifest and where it came from (``definition[3]``, ``src document 2``)."""

    __slots__ = ("label", "obj", "namespaced", "deferred")

    def __init__(self, label: str, obj: Any) -> None:
        self.label = label
        self.obj = obj
        self.namespaced: bool | None = None
        self.deferred = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        meta = self.obj["metadata"]
        return (self.obj["apiVersion"].split("/")[0] if "/" in self.obj["apiVersion"] else "",
                self.obj["kind"], meta.get("namespace") or "", meta["name"])


# -- parsing ----------------------------------------------------------------------------
def _yaml_documents(text: str, field: str) -> list[Any]:
    if not HAS_YAML:
        raise InvalidInput(field, "parsing YAML needs the PyYAML Python library")
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise InvalidInput(field, "is not valid YAML%s: %s" % (where, getattr(exc, "problem", None) or exc))


def _is_list(doc: Any) -> bool:
    """``kind: List`` (or ``ConfigMapList`` and the like) as ``kubectl get -o yaml`` writes them."""
    return (isinstance(doc, dict) and isinstance(doc.get("kind"), str) and doc["kind"].endswith("List")
            and isinstance(doc.get("items"), list) and "spec" not in doc)


def _expand(docs: list[Any], label_of: Callable[[int], str]) -> list[Item]:
    """Drop empty documents and unpack ``kind: List``; returns ``[Item]``."""
    items = []
    for idx, doc in enumerate(docs):
        if doc is None:
            continue
        label = label_of(idx)
        if _is_list(doc):
            for sub, obj in enumerate(doc.get("items") or []):
                items.append(Item("%s.items[%d]" % (label, sub), obj))
        else:
            items.append(Item(label, doc))
    return items


def load_items(definition: Any = None, src: str | None = None) -> list[Item]:
    """Manifests from ``definition`` (mapping, list or YAML text) or ``src`` (a YAML file)."""
    if src is not None:
        path = os.path.expanduser(src)
        try:
            with open(path, "r", encoding="utf-8") as handle:
                text = handle.read()
        except (IOError, OSError, UnicodeDecodeError) as exc:
            raise InvalidInput("src", "cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc))
        return _expand(_yaml_documents(text, "src"), lambda i: "src document %d" % i)
    if isinstance(definition, str):
        return _expand(_yaml_documents(definition, "definition"), lambda i: "definition document %d" % i)
    if isinstance(definition, dict):
        return _expand([definition], lambda i: "definition")
    if isinstance(definition, list):
        docs: list[tuple[str, Any]] = []
        for idx, entry in enumerate(definition):
            # A list may mix mappings and YAML text (for example a list of lookup('template') results).
            if isinstance(entry, str):
                docs.extend(("definition[%d] document %d" % (idx, sub), doc)
                            for sub, doc in enumerate(_yaml_documents(entry, "definition[%d]" % idx)))
            else:
                docs.append(("definition[%d]" % idx, entry))
        return _expand([d for _unused, d in docs], lambda i: docs[i][0])
    raise InvalidInput("definition", "must be a mapping, a list of mappings or YAML text, got %s"
                       % type(definition).__name__)


def _mask_doc(doc: Any) -> Any:
    if _is_list(doc):
        return dict(doc, items=[_mask_doc(d) for d in doc["items"]])
    return mask_secret_values(doc)


def masked_definition(definition: Any) -> Any:
    """``definition`` as Ansible may echo it back (the module's invocation): Secret values masked.

    Input without a Secret comes back unchanged; YAML text with one comes back as
    parsed, masked documents, and text that does not parse is not shown at all.
    """
    if definition is None:
        return None
    if isinstance(definition, str):
        try:
            docs = _yaml_documents(definition, "definition")
        except InvalidInput:
            return "<not shown: YAML that could not be parsed>"
        masked = [_mask_doc(d) for d in docs]
        return definition if masked == docs else [d for d in masked if d is not None]
    if isinstance(definition, list):
        return [masked_definition(d) if isinstance(d, str) else _mask_doc(d) for d in definition]
    return _mask_doc(definition)


# -- checking and planning ------------------------------------------------------------
def crd_kinds(items: list[Item]) -> dict[tuple[str, str], bool]:
    """``(apiVersion, kind) -> namespaced`` for the custom kinds the input itself defines."""
    out = {}
    for item in items:
        obj = item.obj
        if obj.get("kind") != CRD_KIND or not str(obj.get("apiVersion", "")).startswith("apiextensions.k8s.io/"):
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            if spec.get("group") and kind and version.get("name"):
                namespaced = spec.get("scope", "Namespaced") == "Namespaced"
                out[("%s/%s" % (spec["group"], version["name"]), kind)] = namespaced
    return out


def prepare(client: KubeClient, items: list[Item], namespace: str | None = None) -> list[Item]:
    """Check every manifest and settle its namespace; raises before anything is written."""
    if not items:
        raise InvalidInput("definition", "holds no manifest")
    for item in items:
        validate_manifest(item.obj, field=item.label)
        meta = item.obj["metadata"]
        if not isinstance(meta["name"], str):
            raise InvalidInput(item.label, "metadata.name must be a string")
        if meta.get("namespace") is not None and not isinstance(meta.get("namespace"), str):
            raise InvalidInput(item.label, "metadata.namespace must be a string")
    custom = crd_kinds(items)
    seen: dict[tuple[str, str, str, str], str] = {}
    for item in items:
        obj = item.obj
        key = (obj["apiVersion"], obj["kind"])
        if key in custom:
            # Not served yet when the CRD is new: resolved once the CRD is established.
            item.namespaced, item.deferred = custom[key], True
        else:
            try:
                item.namespaced = client.resource_info(obj["apiVersion"], obj["kind"])[1]
            except InvalidInput as exc:
                raise InvalidInput("%s.%s" % (item.label, exc.field), exc.msg.split(": ", 1)[-1])
        meta = obj["metadata"]
        if item.namespaced:
            if not meta.get("namespace"):
                if not namespace:
                    raise InvalidInput(item.label, "%s %s is namespaced but has no metadata.namespace; set it or "
                                                   "the namespace option" % (obj["kind"], meta["name"]))
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if item.key in seen:
            raise InvalidInput(item.label, "%s is also defined by %s" % (object_ref(obj), seen[item.key]))
        seen[item.key] = item.label
    return items


def segments(items: list[Item]) -> list[list[Item]]:
    """Split the input after each CRD whose kinds later manifests use, so those wait for it."""
    out, current = [], []
    pending_kinds = {}
    for item in items:
        if item.obj["kind"] == CRD_KIND:
            pending_kinds.update({k: item for k in crd_kinds([item])})
    needed = set()
    for item in items:
        if item.deferred:
            needed.add(id(pending_kinds[(item.obj["apiVersion"], item.obj["kind"])]))
    for item in items:
        current.append(item)
        if id(item) in needed:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _resolve_deferred(client: KubeClient, items: list[Item], deadline: float) -> None:
    """Look up the custom kinds of a CRD that has just been established."""
    for item in items:
        if not item.deferred:
            continue
        while True:
            try:
                client.resource_info(item.obj["apiVersion"], item.obj["kind"])
                break
            except InvalidInput:
                if time.monotonic() > deadline:
                    raise InvalidInput("%s.kind" % item.label, "%s is still not served after its CRD was "
                                                               "established" % item.obj["kind"])
                time.sleep(0.2)


# -- results ------------------------------------------------------------------------------
def object_result(item: Item, result: ApplyResult | None = None,
                  deleted: tuple[bool, Obj | None] | None = None) -> dict[str, Any]:
    """Per-object summary: identity, whether it changed, version and uid; never data."""
    obj = (result.after if result is not None else None) or item.obj
    meta = obj.get("metadata") or {}
    out = {
        "apiVersion": item.obj["apiVersion"],
        "kind": item.obj["kind"],
        "namespace": item.obj["metadata"].get("namespace"),
        "name": item.obj["metadata"]["name"],
    }
    if deleted is not None:
        out.update(changed=deleted[0], deleted=deleted[0], resourceVersion=None, uid=None)
        if deleted[1]:
            out["uid"] = deleted[1]["metadata"].get("uid")
        return out
    result = cast(ApplyResult, result)  # applied: a result, not a deletion
    out.update(changed=bool(result.changed), created=bool(result.created),
               resourceVersion=meta.get("resourceVersion"), uid=meta.get("uid"))
    return out


def count(objects: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"created": 0, "changed": 0, "unchanged": 0, "deleted": 0}
    for obj in objects:
        if obj.get("deleted"):
            counts["deleted"] += 1
        elif obj.get("created"):
            counts["created"] += 1
        elif obj.get("changed"):
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
    return counts


def _diff_of(item: Item, before: Obj | None, after: Obj | None) -> dict[str, Any]:
    diff = make_diff(before, after)
    diff["before_header"] = diff["after_header"] = object_ref(item.obj)
    return diff


# -- concurrency ---------------------------------------------------------------------------
def run_all(func: Callable[..., Any], args_list: Sequence[Sequence[Any]], concurrency: int) -> list[Any]:
    """Run ``func(*args)`` for each entry on up to ``concurrency`` threads; results keep order.

    Every call runs to its end; then all failures are reported together, the first
    one's type kept, so one slow object does not hide another.
    """
    outcomes = run_batch(func, args_list, concurrency, keep_going=True)
    for ok, value in outcomes:
        if not ok and not isinstance(value, DatastoreError):
            raise value
    errors = [exc for ok, exc in outcomes if not ok]
    if len(errors) > 1:
        # Keep the first failure's type (so the caller still sees a WaitTimeout) with every message in it.
        first = errors[0]
        first.msg = "%d objects failed: %s" % (len(errors), "; ".join(e.msg for e in errors))
        first.args = (first.msg,)
        if isinstance(first, (WaitTimeout, WaitFailed)):
            first.details["not_ready"] = [line for e in errors for line in (e.details.get("not_ready") or [])]
    if errors:
        raise errors[0]
    return [value for _unused, value in outcomes]


# -- the module's work ---------------------------------------------------------------------
def _wait_one(client: KubeClient, obj: Obj, deadline: float) -> Obj:
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        # Typically a Namespace still terminating from an earlier teardown: it will never become ready.
        raise WaitFailed("%s is being deleted (since %s) and cannot become ready; wait until it is gone, then run again"
                         % (object_ref(obj), obj["metadata"]["deletionTimestamp"]))
    # Whole seconds: the timeout shows up in the message ("not ready after 300s").
    return wait_ready(client, obj, max(1, int(round(deadline - time.monotonic()))))


def run_present(client: KubeClient, items: list[Item], params: Params, check_mode: bool, diff: bool) -> Result:
    concurrency = max(1, params.get("concurrency") or 1)
    wait = params.get("wait") and not check_mode
    deadline = time.monotonic() + (params.get("wait_timeout") or 300)
    results: dict[str, ApplyResult] = {}
    pretend: set[str] = set()

    if check_mode:
        # A dry run does not create a Namespace or a CRD, so what goes into a new
        # one cannot be dry-run; report it as to be created instead.
        for item in items:
            name = item.obj["metadata"]["name"]
            if item.obj["kind"] == "Namespace" and client.get("v1", "Namespace", name) is None:
                pretend.update(i.label for i in items if i.obj["metadata"].get("namespace") == name)
        for item in items:
            if item.deferred and item.label not in pretend:
                try:
                    client.resource_info(item.obj["apiVersion"], item.obj["kind"])
                except InvalidInput:
                    pretend.add(item.label)

    for segment in segments(items):
        if not check_mode:
            _resolve_deferred(client, segment, deadline if wait else time.monotonic() + _DISCOVERY_GRACE)
        live = [i for i in segment if i.label not in pretend]
        applied = apply_objects(client, [i.obj for i in live], check_mode=check_mode,
                                force=params.get("force_conflicts"), concurrency=concurrency)
        for item, result in zip(live, applied):
            results[item.label] = result
        for item in segment:
            if item.label in pretend:
                results[item.label] = ApplyResult(None, item.obj, True)
        last = segment[-1]
        if not check_mode and last.obj["kind"] == CRD_KIND and last is not items[-1]:
            # Later manifests use this CRD's kinds: they can only be applied once it is established.
            wait_ready(client, results[last.label].after,
                       max(1.0, deadline - time.monotonic()) if wait else _DISCOVERY_GRACE * 6)

    if wait:
        waited = [(client, results[i.label].after, deadline) for i in items
                  if i.obj["kind"] in READY_PREDICATES]
        run_all(_wait_one, waited, concurrency)

    objects = [object_result(i, results[i.label]) for i in items]
    out = {"changed": any(o["changed"] for o in objects), "objects": objects, "counts": count(objects)}
    if diff:
        out["diff"] = [_diff_of(i, results[i.label].before, results[i.label].after)
                       for i in items if results[i.label].changed]
    return out


def _delete_one(client: KubeClient, obj: Obj, check_mode: bool, propagation: str) -> tuple[bool, Obj | None]:
    return delete_object(client, obj, check_mode=check_mode, propagation=propagation)


def run_absent(client: KubeClient, items: list[Item], params: Params, check_mode: bool, diff: bool) -> Result:
    """Delete in reverse order; Namespaces and CRDs last, since deleting them takes what is inside along."""
    concurrency = max(1, params.get("concurrency") or 1)
    propagation = params.get("propagation_policy") or "Background"
    ordered = [i for i in reversed(items) if i.obj["kind"] not in BARRIER_KINDS] + \
              [i for i in reversed(items) if i.obj["kind"] in BARRIER_KINDS]
    present = []
    for item in ordered:
        if item.deferred:
            try:
                client.resource_info(item.obj["apiVersion"], item.obj["kind"])
            except InvalidInput:
                continue  # the kind is not served, so no such object exists
        present.append(item)
    plain = [i for i in present if i.obj["kind"] not in BARRIER_KINDS]
    outcome = dict(zip([i.label for i in plain],
                       run_all(_delete_one, [(client, i.obj, check_mode, propagation) for i in plain], concurrency)))
    for item in present:
        if item.obj["kind"] in BARRIER_KINDS:
            outcome[item.label] = _delete_one(client, item.obj, check_mode, propagation)

    if params.get("wait") and not check_mode:
        timeout = params.get("wait_timeout") or 300
        gone = [(client, i.obj["apiVersion"], i.obj["kind"], i.obj["metadata"].get("namespace"),
                 i.obj["metadata"]["name"], timeout) for i in present if outcome[i.label][0]]
        run_all(wait_deleted, gone, concurrency)

    objects = [object_result(i, deleted=outcome.get(i.label, (False, None))) for i in items]
    out = {"changed": any(o["changed"] for o in objects), "objects": objects, "counts": count(objects)}
    if diff:
        out["diff"] = [_diff_of(i, outcome[i.label][1], None) for i in items
                       if outcome.get(i.label, (False,))[0]]
    return out


def run(task: Task, client: KubeClient) -> Result:
    """The ``resource`` module's work."""
    params = dict(task.params)
    # task.params are the module's own, which Ansible echoes back as the task's invocation:
    # keep Secret values out of them.
    task.params["definition"] = masked_definition(params["definition"])
    if params["concurrency"] < 1:
        raise InvalidInput("concurrency", "must be at least 1")
    items = prepare(client, load_items(params.get("definition"), params.get("src")), params.get("namespace"))
    if params.get("state") == "absent":
        return run_absent(client, items, params, task.check_mode, task.diff)
    return run_present(client, items, params, task.check_mode, task.diff)
