"""An in-memory stand-in for ``_kube.KubeClient``, just enough for apply, list, delete and waits."""

from __future__ import annotations

import copy
import itertools
import threading

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput, KubeApiError
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KNOWN_KINDS

_SKIP = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "deletionTimestamp")


def _content(obj):
    out = copy.deepcopy(obj)
    out.pop("status", None)
    for key in _SKIP:
        out.get("metadata", {}).pop(key, None)
    return out


class FakeKube:
    def __init__(self, extra_kinds=None):
        self.kinds = dict(KNOWN_KINDS)
        self.kinds.update(extra_kinds or {})
        self.store = {}
        self.calls = []
        self.lock = threading.Lock()
        self._rv = itertools.count(100)
        self._uid = itertools.count(1)

    def resource_info(self, api_version, kind):
        self.calls.append(("discover", api_version, kind))
        if (api_version, kind) not in self.kinds:
            raise InvalidInput("kind", "%s is not a kind of %s on this cluster" % (kind, api_version))
        return self.kinds[(api_version, kind)]

    @staticmethod
    def _key(api_version, kind, namespace, name):
        return (kind, namespace or "", name)

    def get(self, api_version, kind, name, namespace=None):
        self.calls.append(("get", kind, namespace, name))
        with self.lock:
            obj = self.store.get(self._key(api_version, kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        self.calls.append(("list", kind, namespace, label_selector))
        wanted = dict(part.split("=", 1) for part in (label_selector or "").split(",") if part)
        only = (field_selector or "").partition("metadata.name=")[2] or None
        items = []
        with self.lock:
            for (k, ns, _unused), obj in sorted(self.store.items()):
                labels = obj["metadata"].get("labels") or {}
                if only and obj["metadata"]["name"] != only:
                    continue
                if k == kind and (namespace is None or ns == namespace) and \
                        all(labels.get(a) == b for a, b in wanted.items()):
                    items.append(copy.deepcopy(obj))
        return {"items": items, "metadata": {"resourceVersion": "1"}}

    def apply(self, obj, dry_run=False, force=False):
        self.calls.append(("apply", obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"], dry_run))
        meta = obj["metadata"]
        key = self._key(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        with self.lock:
            live = self.store.get(key)
            if live and live.get("immutable") and (live.get("data") != obj.get("data")
                                                   or live.get("binaryData") != obj.get("binaryData")):
                raise KubeApiError("PATCH x: 422 ConfigMap is invalid", status=422, reason="Invalid", causes=[
                    {"reason": "FieldValueForbidden", "field": "data",
                     "message": "Forbidden: field is immutable when `immutable` is set"}])
            if live and _content(live) == _content(obj):
                return copy.deepcopy(live)
            new = copy.deepcopy(obj)
            new["metadata"]["resourceVersion"] = str(next(self._rv))
            new["metadata"]["uid"] = live["metadata"]["uid"] if live else "uid-%d" % next(self._uid)
            created = live["metadata"]["creationTimestamp"] if live else "2024-01-01T00:00:00Z"
            new["metadata"]["creationTimestamp"] = created
            if live and live["metadata"].get("deletionTimestamp"):
                new["metadata"]["deletionTimestamp"] = live["metadata"]["deletionTimestamp"]
            if not dry_run:
                self.store[key] = new
            return copy.deepcopy(new)

    def delete(self, api_version, kind, name, namespace=None, propagation=None, dry_run=False, preconditions=None):
        self.calls.append(("delete", kind, namespace, name, propagation))
        with self.lock:
            obj = self.store.get(self._key(api_version, kind, namespace, name))
            if obj is None:
                return None
            if not dry_run:
                del self.store[self._key(api_version, kind, namespace, name)]
            return copy.deepcopy(obj)

    def writes(self):
        return [c for c in self.calls if (c[0] == "apply" and not c[-1]) or c[0] == "delete"]
