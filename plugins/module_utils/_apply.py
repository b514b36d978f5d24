# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply, change detection and diffs.

An object is applied with one GET and one server-side apply PATCH. The API server
does not write an object whose applied state already matches, so an unchanged
object keeps its ``resourceVersion``; ``changed`` is read off the server's answer
by comparing the object it returns with the one it held (status and server-kept
metadata aside). Check mode sends the PATCH as a dry run and compares the same way.
"""

from __future__ import annotations

__metaclass__ = type

import copy
from typing import TYPE_CHECKING, Any, Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._batch import run_batch
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    Conflict,
    ImmutableField,
    InvalidInput,
    KubeApiError,
    NotFound,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._masking import MASK, MASK_CHANGED, SECRET_VALUE_FIELDS
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import (
    DNS1035_LABEL,
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    is_dns_label,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj

if TYPE_CHECKING:
    from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient  # pragma: no cover

VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
# Applied one at a time, before anything after them: later objects may live in them.
BARRIER_KINDS = frozenset(("Namespace", "CustomResourceDefinition"))
# From this many objects of one kind in one namespace, one LIST replaces their GETs.
PREFETCH_MIN = 16
_UNSET = object()


def object_ref(obj: Obj) -> str:
    """``Kind namespace/name`` (or ``Kind name``) for messages."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace"):
        return "%s %s/%s" % (obj.get("kind"), meta["namespace"], meta.get("name"))
    return "%s %s" % (obj.get("kind"), meta.get("name"))


def clean(obj: Obj | None) -> Obj | None:
    """A copy of ``obj`` without status and the metadata the server maintains."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in VOLATILE_METADATA:
        meta.pop(key, None)
    return out


def mask_secret(before: Obj | None, after: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Mask the values of a Secret pair, marking the keys whose value changed."""
    def values(obj: Obj | None) -> dict[str, Any]:
        if not obj:
            return {}
        merged = dict(obj.get("data") or {})
        merged.update(obj.get("stringData") or {})
        return merged

    old, new = values(before), values(after)

    def masked(obj: Obj | None, other: dict[str, Any]) -> Obj | None:
        if obj is None:
            return None
        out = dict(obj)
        for field in SECRET_VALUE_FIELDS:
            if field in out and out[field] is not None:
                out[field] = {
                    k: (MASK_CHANGED if (k in other and other.get(k) != v) else MASK)
                    for k, v in out[field].items()
                }
        return out

    return masked(before, new), masked(after, old)


def make_diff(before: Obj | None, after: Obj | None) -> dict[str, Any]:
    """Diff-mode payload for one object; Secret values are masked."""
    before, after = clean(before), clean(after)
    if (after or before or {}).get("kind") == "Secret":
        before, after = mask_secret(before, after)
    return {"before": before or {}, "after": after or {}}


class ApplyResult:
    """What applying one object did."""

    __slots__ = ("before", "after", "changed", "created")

    def __init__(self, before: Obj | None, after: Obj, changed: bool) -> None:
        self.before = before
        self.after = after
        self.changed = changed
        self.created = before is None and after is not None

    def diff(self) -> dict[str, Any]:
        return make_diff(self.before, self.after)


def validate_manifest(obj: object, field: str = "definition") -> None:
    """Check the parts of a manifest the client needs, before anything is sent."""
    if not isinstance(obj, dict):
        raise InvalidInput(field, "each manifest must be a mapping, got %s" % type(obj).__name__)
    for key in ("apiVersion", "kind"):
        if not obj.get(key) or not isinstance(obj.get(key), str):
            raise InvalidInput(field, "manifest has no %s" % key)
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise InvalidInput(field, "%s manifest has no metadata.name" % obj["kind"])
    check_names(obj, field)


# The API server's naming rule per kind, for the kinds the collection knows. Names it
# would refuse are refused here, before the first object of a task is written.
# (RBAC kinds and custom resources have looser rules and are left to the server.)
_NAME_RULES = {"Namespace": ("DNS-1123 label", DNS1123_LABEL, 63),
               "Service": ("DNS-1035 label", DNS1035_LABEL, 63)}
_SUBDOMAIN_KINDS = frozenset((
    "ConfigMap", "Secret", "Pod", "PersistentVolumeClaim", "PersistentVolume", "ServiceAccount", "StatefulSet",
    "Deployment", "DaemonSet", "ReplicaSet", "Job", "CronJob", "PodDisruptionBudget", "NetworkPolicy", "Ingress",
    "StorageClass", "PriorityClass", "CustomResourceDefinition", "HorizontalPodAutoscaler", "LimitRange",
    "ResourceQuota", "EndpointSlice"))


def check_names(obj: Obj, field: str = "definition") -> None:
    """Refuse a metadata.name or metadata.namespace the API server would refuse."""
    meta = obj["metadata"]
    kind: Any = obj.get("kind")
    rule = _NAME_RULES.get(kind) or (("DNS-1123 subdomain", DNS1123_SUBDOMAIN, 253) if kind in _SUBDOMAIN_KINDS
                                     else None)
    name = meta.get("name")
    if rule and isinstance(name, str) and (len(name) > rule[2] or not rule[1].match(name)):
        raise InvalidInput(field, "metadata.name %r is not a valid %s name: it must be a %s (lower-case letters, "
                                  "digits and '-', at most %d characters)" % (name, kind, rule[0], rule[2]))
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace and not is_dns_label(namespace):
        raise InvalidInput(field, "metadata.namespace %r is not a valid namespace name (a DNS-1123 label)"
                                  % (namespace,))


def immutable_fields(error: Exception) -> list[str]:
    """Fields a 422 answer says cannot change in place (empty when it says nothing of the kind)."""
    if not isinstance(error, KubeApiError) or error.status != 422:
        return []
    fields = []
    for cause in error.causes:
        text = (cause.get("message") or "").lower()
        if "immutable" in text or "forbidden" in (cause.get("reason") or "").lower():
            fields.append(cause.get("field") or "")
    if not fields and "immutable" in error.msg.lower():
        fields.append("")
    return fields


def namespace_missing(error: Exception, namespace: str | None) -> bool:
    """Whether a 404 says the object's namespace does not exist (yet)."""
    return bool(namespace) and isinstance(error, NotFound) and ('namespaces "%s" not found' % namespace) in error.msg


def dry_run_create(client: KubeClient, obj: Obj) -> Obj:
    """Server-side dry run of creating ``obj``; returns what the server would hold.

    A namespace that does not exist yet (an earlier task of the same check-mode run
    would create it) cannot be dry-run into: the object is then reported as it was
    asked for, to be created.
    """
    try:
        return client.create(obj, dry_run=True)
    except NotFound as exc:
        if namespace_missing(exc, obj["metadata"].get("namespace")):
            return copy.deepcopy(obj)
        raise


def apply_object(client: KubeClient, obj: Obj, check_mode: bool = False, force: bool | None = False,
                 before: Any = _UNSET) -> ApplyResult:
    """Apply one object; raises typed errors that name the object.

    ``before`` is the live object (``None`` when it does not exist) when the caller
    already has it; otherwise it is read with a GET.
    """
    meta = obj["metadata"]
    if before is _UNSET:
        before = client.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    try:
        after = client.apply(obj, dry_run=check_mode, force=force)
    except NotFound as exc:
        if check_mode and before is None and namespace_missing(exc, meta.get("namespace")):
            # Check mode of a play that also creates the namespace: report the object as to be created.
            return ApplyResult(None, copy.deepcopy(obj), True)
        raise KubeApiError("%s: %s" % (object_ref(obj), exc.msg), status=exc.status, reason=exc.reason)
    except Conflict as exc:
        raise Conflict("%s: fields are owned by another manager (%s); set force=true to take them over"
                       % (object_ref(obj), exc.msg), status=exc.status, reason=exc.reason)
    except KubeApiError as exc:
        fields = immutable_fields(exc)
        if fields and before is not None:
            names = ", ".join(f for f in fields if f) or "a field"
            raise ImmutableField("%s: %s cannot change in place" % (object_ref(obj), names), fields=fields)
        raise KubeApiError("%s: %s" % (object_ref(obj), exc.msg), status=exc.status, reason=exc.reason,
                           causes=exc.causes)
    # Compare what was asked for, not resourceVersions: a controller writing status
    # between the GET and the PATCH must not make an unchanged object look changed.
    changed = before is None or clean(before) != clean(after)
    return ApplyResult(before, after, changed)


def prefetch(client: KubeClient, objs: list[Obj], indexes: Iterable[int]) -> dict[int, Obj | None]:
    """``index -> live object or None`` for the objects of ``indexes`` that are part of a big group.

    Objects of one kind in one namespace, ``PREFETCH_MIN`` or more, are read with one
    LIST instead of one GET each. A group whose LIST is refused (RBAC may allow GET
    by name only) is left to the GETs.
    """
    groups: dict[tuple[str, str, str | None], list[int]] = {}
    for idx in indexes:
        obj = objs[idx]
        key = (obj["apiVersion"], obj["kind"], (obj.get("metadata") or {}).get("namespace"))
        groups.setdefault(key, []).append(idx)
    known = {}
    for (api_version, kind, namespace), members in groups.items():
        if len(members) < PREFETCH_MIN:
            continue
        try:
            listing = client.list(api_version, kind, namespace)
        except KubeApiError:
            continue
        live = {}
        for item in (listing or {}).get("items") or []:
            # Items of a list come without apiVersion and kind; a GET's answer has them.
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            live[item["metadata"]["name"]] = item
        for idx in members:
            known[idx] = live.get(objs[idx]["metadata"]["name"])
    return known


def apply_objects(client: KubeClient, objs: list[Obj], check_mode: bool = False, force: bool | None = False,
                  concurrency: int = 8) -> list[ApplyResult]:
    """Apply many objects in order, concurrently between barriers; results keep input order.

    Namespaces and CRDs are applied alone and before what follows them, because
    later objects may need them. Everything between two barriers goes out on up to
    ``concurrency`` threads sharing the client's connection pool.
    """
    results: list[Any] = [None] * len(objs)
    batch: list[int] = []

    def flush() -> None:
        if not batch:
            return
        known = prefetch(client, objs, batch)
        outcomes = run_batch(apply_object, [(client, objs[idx], check_mode, force, known.get(idx, _UNSET))
                                            for idx in batch], concurrency)
        for idx, (ok, value) in zip(batch, outcomes):
            if not ok:
                raise value
            results[idx] = value
        del batch[:]

    for idx, obj in enumerate(objs):
        if obj.get("kind") in BARRIER_KINDS:
            flush()
            batch.append(idx)
            flush()
        else:
            batch.append(idx)
    flush()
    return results


def delete_object(client: KubeClient, obj: Obj, check_mode: bool = False,
                  propagation: str = "Background") -> tuple[bool, Obj | None]:
    """Delete an object; returns ``(changed, before)``."""
    meta = obj["metadata"]
    before = client.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    if before is None:
        return False, None
    if not check_mode:
        client.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), propagation=propagation)
    return True, before
