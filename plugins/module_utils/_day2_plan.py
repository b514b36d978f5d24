# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans of day-2 operations on a datastore's StatefulSet: which pods, in what order, behind which gates.

Pure: decisions from the StatefulSet, its pods and the datastore's health report (``_health``),
no client. ``_day2`` carries the plans out.

A rolling update replaces the pods one at a time, highest ordinal first and the primary last;
a pod is on the target when its ``controller-revision-hash`` is the StatefulSet's update
revision. A pod that is not ready and not on the target is *stuck*: the StatefulSet controller
(``OrderedReady``) waits for it forever, so it is replaced first when asked.
"""

from __future__ import annotations

__metaclass__ = type

import copy
import hashlib
import json
import re
from typing import Any, Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj

REVISION_LABEL = "controller-revision-hash"
PREFIX = "datastore.kubernetes/"
CONFIG_HASH = PREFIX + "config-hash"
RESTARTED_AT = PREFIX + "restartedAt"
# The update strategy the StatefulSet had before a rolling update took it over (JSON); restored at the end.
SAVED_STRATEGY = PREFIX + "rollout-saved-strategy"
ENGINES = ("postgres", "elasticsearch", "cassandra", "none")


# -- pods ----------------------------------------------------------------------------
def ordinal(pod_name: str) -> int:
    tail = pod_name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def pod_name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])


def revision(pod: Obj) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL)


def is_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def members(sts: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The StatefulSet's own pods (``<name>-<ordinal>``), by ordinal."""
    name = sts["metadata"]["name"]
    own = [p for p in pods if re.match(r"^%s-\d+$" % re.escape(name), pod_name(p))]
    return sorted(own, key=lambda p: ordinal(pod_name(p)))


def update_order(names: Iterable[str], primary: str | None) -> list[str]:
    """Highest ordinal first; the primary last wherever its ordinal is."""
    ordered = sorted(names, key=ordinal, reverse=True)
    if primary in ordered:
        ordered.remove(primary)
        ordered.append(primary)
    return ordered


def plan_update(pods: list[Obj], target_revision: str | None, template_changes: bool, primary: str | None) -> Obj:
    """Which pods to replace, in which order, and which of them are stuck.

    ``target_revision`` is the update revision the pods must reach (``None`` when a template
    change is about to make a new one: then every pod is replaced). Stuck pods (not ready, not
    on the target) come first, highest ordinal first: the controller waits on them before any other.
    """
    pending, stuck = [], []
    for pod in pods:
        name = pod_name(pod)
        outdated = template_changes or target_revision is None or revision(pod) != target_revision
        if not outdated:
            continue
        if not is_ready(pod) and not is_terminating(pod):
            stuck.append(name)
        else:
            pending.append(name)
    stuck = sorted(stuck, key=ordinal, reverse=True)
    return {"stuck": stuck, "order": stuck + update_order(pending, primary)}


# -- the pod template -----------------------------------------------------------------
def config_hash(config_maps: list[Obj]) -> str:
    """A digest of the ConfigMaps' names and contents (data and binaryData)."""
    digest = hashlib.sha256()
    for cm in sorted(config_maps, key=lambda c: c["metadata"]["name"]):
        body = {"name": cm["metadata"]["name"], "data": cm.get("data") or {}, "binaryData": cm.get("binaryData") or {}}
        digest.update(json.dumps(body, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def pick_container(sts: Obj, container: str | None) -> str:
    containers = ((sts.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    names = [c.get("name") for c in containers]
    if container is None:
        if not names:
            raise InvalidInput("container", "the StatefulSet's pod template has no container")
        return str(names[0])
    if container not in names:
        raise InvalidInput("container", "%r is not a container of the pod template (it has %s)"
                           % (container, ", ".join(str(n) for n in names)))
    return container


def template_patch(sts: Obj, container: str, image: str | None = None, resources: Obj | None = None,
                   annotations: dict[str, str] | None = None) -> tuple[Obj, Obj, Obj]:
    """``(patch, before, after)``: a merge patch of ``spec.template`` and the fields it changes.

    The containers list is sent whole (a merge patch replaces lists), changed only in ``container``.
    ``patch`` is empty when nothing differs.
    """
    template = (sts.get("spec") or {}).get("template") or {}
    before: Obj = {}
    after: Obj = {}
    patch: Obj = {}
    containers = copy.deepcopy((template.get("spec") or {}).get("containers") or [])
    changed_container = False
    for entry in containers:
        if entry.get("name") != container:
            continue
        if image is not None and entry.get("image") != image:
            before["image"], after["image"] = entry.get("image"), image
            entry["image"] = image
            changed_container = True
        if resources is not None and normalise_resources(entry.get("resources")) != normalise_resources(resources):
            before["resources"], after["resources"] = entry.get("resources") or {}, resources
            entry["resources"] = resources
            changed_container = True
    if changed_container:
        patch.setdefault("spec", {})["containers"] = containers
    current = (template.get("metadata") or {}).get("annotations") or {}
    wanted = {k: v for k, v in (annotations or {}).items() if current.get(k) != v}
    if wanted:
        patch["metadata"] = {"annotations": wanted}
        before["annotations"] = {k: current.get(k) for k in wanted}
        after["annotations"] = dict(wanted)
    return patch, before, after


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024 ** 2,
           "Gi": 1024 ** 3, "Ti": 1024 ** 4}


def _quantity(value: Any) -> Any:
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        return str(value)
    return round(float(match.group(1)) * _SUFFIX[match.group(2)], 6)


def normalise_resources(resources: Obj | None) -> Obj:
    """``requests``/``limits`` with quantities as numbers, so ``1`` and ``1000m`` compare equal."""
    out: Obj = {}
    for key in ("requests", "limits"):
        values = (resources or {}).get(key) or {}
        if values:
            out[key] = {name: _quantity(v) for name, v in values.items()}
    return out


def validate_resources(resources: Obj | None) -> None:
    if resources is None:
        return
    for key, values in resources.items():
        if key not in ("requests", "limits", "claims"):
            raise InvalidInput("resources", "unknown key %r (requests, limits)" % key)
        if key == "claims":
            continue
        if not isinstance(values, dict):
            raise InvalidInput("resources.%s" % key, "must be a mapping of resource name to quantity")
        for name, value in values.items():
            if not _QUANTITY.match(str(value)) or _QUANTITY.match(str(value)).group(2) not in _SUFFIX:  # type: ignore[union-attr]
                raise InvalidInput("resources.%s.%s" % (key, name), "%r is not a quantity" % (value,))


def strategy_takeover(sts: Obj) -> Obj | None:
    """The patch that switches the StatefulSet to ``OnDelete`` for the run, saving its own strategy.

    ``None`` when it is already ``OnDelete`` (the user's choice, or a run that was interrupted).
    With ``OnDelete`` only the pods this run deletes are replaced: a lowered ``partition`` would let
    the controller roll the next pod as soon as one is ready, before the datastore's gate.
    """
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {"type": "RollingUpdate"}
    if strategy.get("type") == "OnDelete":
        return None
    return {"metadata": {"annotations": {SAVED_STRATEGY: json.dumps(strategy, sort_keys=True)}},
            "spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}}


def strategy_restore(sts: Obj) -> Obj | None:
    """The patch that gives the StatefulSet back the strategy saved by ``strategy_takeover``."""
    saved = ((sts.get("metadata") or {}).get("annotations") or {}).get(SAVED_STRATEGY)
    if saved is None:
        return None
    try:
        strategy = json.loads(saved)
    except ValueError:
        strategy = {"type": "RollingUpdate"}
    if not isinstance(strategy, dict) or strategy.get("type") not in ("RollingUpdate", "OnDelete"):
        strategy = {"type": "RollingUpdate"}
    if strategy.get("type") == "RollingUpdate":
        strategy.setdefault("rollingUpdate", None)
    return {"metadata": {"annotations": {SAVED_STRATEGY: None}}, "spec": {"updateStrategy": strategy}}


# -- gates ----------------------------------------------------------------------------
def gate_description(engine: str, max_lag_bytes: int, allow_yellow: bool = False,
                     disable_allocation: bool = False) -> list[str]:
    if engine == "elasticsearch":
        gates = ["pod Ready on the new revision",
                 "every pod of the StatefulSet joined the cluster (_cat/nodes)",
                 "cluster health green" + (", or yellow with no shard relocating or initializing"
                                           if allow_yellow else "")]
        if disable_allocation:
            gates.insert(0, "before each pod: cluster.routing.allocation.enable=primaries; reset once it is Ready")
        return gates
    if engine == "postgres":
        return ["pod Ready on the new revision",
                "one primary; every replica streaming from it (pg_stat_replication)",
                "every replica's replay lag at most %d bytes" % max_lag_bytes]
    return ["pod Ready on the new revision"]


def postgres_primary_gate(data: Obj | None, primary: str, replica_ips: dict[str, str | None],
                          max_lag_bytes: int) -> list[str]:
    """Why the PostgreSQL gate does not pass yet, from the primary's own answer (empty: it passes).

    ``data``: the primary's health row (``_health.parse_postgres``); ``replica_ips``: every other
    member and its pod address. One command on the primary tells it all: it is not in recovery, and
    its ``pg_stat_replication`` lists each replica streaming with a lag under the bound.
    """
    if data is None:
        return ["%s: did not answer" % primary]
    if data.get("in_recovery"):
        return ["%s: in recovery, not the primary" % primary]
    rows = {row.get("client_addr"): row for row in data.get("replication") or []}
    problems = []
    for pod, ip in sorted(replica_ips.items(), key=lambda item: ordinal(item[0])):
        row = rows.get(ip) if ip else None
        if row is None:
            problems.append("%s: not connected to the primary %s" % (pod, primary))
        elif row.get("state") != "streaming":
            problems.append("%s: %s, not streaming" % (pod, row.get("state")))
        elif row.get("lag_bytes") is not None and float(row["lag_bytes"]) > max_lag_bytes:
            problems.append("%s: replay lag %s bytes > %d" % (pod, row["lag_bytes"], max_lag_bytes))
    return problems


# -- scale-down -------------------------------------------------------------------------
def slot_name(pod: str) -> str:
    """The replication slot the postgres role's start-up script makes for a pod ([a-z0-9_])."""
    return re.sub(r"[^a-z0-9_]", "_", pod)


def plan_scale_down(sts_name: str, current: int, target: int, primary: str | None, engine: str) -> Obj:
    """The pods a scale-down from ``current`` to ``target`` removes, highest first; refuses what is unsafe.

    Raises ``InvalidInput`` (field ``replicas``) before anything is written.
    """
    if target < 0:
        raise InvalidInput("replicas", "must be 0 or more")
    if engine == "postgres":
        if target == 0:
            raise InvalidInput("replicas", "0 would remove the PostgreSQL primary%s; a scale-down keeps the primary "
                               "(remove the database with the postgres role's state=absent)"
                               % (" " + primary if primary else ""))
        if primary is not None and ordinal(primary) >= target:
            raise InvalidInput("replicas", "%d would remove %s, which is the primary; switch over to a lower "
                               "ordinal first" % (target, primary))
    removed = ["%s-%d" % (sts_name, n) for n in range(current - 1, target - 1, -1)]
    return {"from": current, "to": target, "remove": removed,
            "slots": [slot_name(p) for p in removed] if engine == "postgres" else []}


def claim_names(sts: Obj, pods: Iterable[str]) -> list[str]:
    """The PVCs ``volumeClaimTemplates`` made for ``pods``: ``<template>-<pod>``."""
    templates = [t["metadata"]["name"] for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []]
    return ["%s-%s" % (t, pod) for pod in pods for t in templates]


# -- Elasticsearch ------------------------------------------------------------------------
# Letters of ``_cat/nodes`` ``node.role``: m master-eligible; d, s, h, w, c, f the data roles.
_ES_DATA_ROLES = set("dshwcf")
EXCLUDE_NAME = "cluster.routing.allocation.exclude._name"
ALLOCATION_ENABLE = "cluster.routing.allocation.enable"


def es_master_eligible(node: Obj) -> bool:
    return "m" in str(node.get("node.role") or "")


def es_data_node(node: Obj) -> bool:
    return bool(set(str(node.get("node.role") or "")) & _ES_DATA_ROLES)


def es_gate(health: Obj | None, node_names: Iterable[str], expected: Iterable[str], allow_yellow: bool) -> list[str]:
    """Why the Elasticsearch gate does not pass yet (empty: it passes).

    ``health``: ``_cluster/health``; ``node_names``: the nodes in the cluster (``_cat/nodes``);
    ``expected``: the StatefulSet's pods (node names are pod names). Green passes; yellow only with
    ``allow_yellow`` and nothing relocating or initializing; red never.
    """
    if not health:
        return ["the cluster did not answer"]
    problems: list[str] = []
    joined = set(node_names)
    problems.extend("%s: has not joined the cluster" % pod for pod in sorted(expected, key=ordinal)
                    if pod not in joined)
    status = health.get("status")
    moving = ["%s %s" % (health[key], key) for key in ("relocating_shards", "initializing_shards") if health.get(key)]
    if status == "yellow" and allow_yellow:
        if moving:
            problems.append("cluster status yellow with %s" % ", ".join(moving))
    elif status != "green":
        detail = ["%s unassigned_shards" % health["unassigned_shards"]] if health.get("unassigned_shards") else []
        extra = detail + moving
        problems.append("cluster status %s%s" % (status, " (%s)" % ", ".join(extra) if extra else ""))
    return problems


def es_allocation_setting(cluster_settings: Obj, key: str) -> str | None:
    """A setting of ``_cluster/settings?flat_settings=true`` (transient over persistent, as Elasticsearch applies them)."""
    for scope in ("transient", "persistent"):
        value = (cluster_settings.get(scope) or {}).get(key)
        if value is not None:
            return str(value)
    return None


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def es_exclusion(current: str | None, add: Iterable[str], drop: Iterable[str]) -> str | None:
    """The ``exclude._name`` value with ``add`` in and ``drop`` out, others' names kept; ``None``: unset."""
    dropped = set(drop)
    names = [n for n in _names(current) if n not in dropped]
    names.extend(n for n in add if n not in names)
    return ",".join(names) or None


def es_own_names(value: str | None, sts_name: str, target: int) -> list[str]:
    """The names in a comma-separated list that are pods of ``sts_name`` at ordinal ``target`` or above."""
    own = re.compile(r"^%s-(\d+)$" % re.escape(sts_name))
    found = []
    for name in _names(value):
        match = own.match(name)
        if match and int(match.group(1)) >= target:
            found.append(name)
    return found


def _index_copies(settings: Obj) -> tuple[int, str | None]:
    """``(replicas, wait_for_active_shards)`` of one index's flat settings; auto-expanding replicas by their floor."""
    auto = str(settings.get("index.auto_expand_replicas") or "false")
    if auto != "false" and "-" in auto:
        low = auto.split("-", 1)[0]
        replicas = int(low) if low.isdigit() else 0
    else:
        replicas = int(settings.get("index.number_of_replicas") or 0)
    wait = settings.get("index.write.wait_for_active_shards")
    return replicas, (str(wait) if wait is not None else None)


def es_scale_down_check(sts_name: str, target: int, nodes: list[Obj], index_settings: Obj,
                        health: Obj | None) -> Obj:
    """What an Elasticsearch scale-down to ``target`` pods moves; raises ``InvalidInput`` (``replicas``) if unsafe.

    ``nodes``: ``_cat/nodes`` (name, node.role); ``index_settings``: ``_settings`` of every index, flat.
    Refused: no master-eligible node would remain (``target`` 0 among them); an index whose copies
    (``number_of_replicas`` + 1, or ``index.write.wait_for_active_shards``) need more data nodes than remain;
    a red cluster (a primary unassigned: its data may be on a leaving node).
    """
    def leaving(name: str) -> bool:
        return bool(es_own_names(name, sts_name, target))

    remaining = [n for n in nodes if not leaving(str(n.get("name")))]
    going = sorted((str(n.get("name")) for n in nodes if leaving(str(n.get("name")))), key=ordinal, reverse=True)
    masters = [n for n in remaining if es_master_eligible(n)]
    if target == 0 or not masters:
        raise InvalidInput("replicas", "%d would leave no master-eligible Elasticsearch node (the cluster and its "
                           "data would be gone); remove the cluster with the elasticsearch role's state=absent"
                           % target)
    if health and health.get("status") == "red":
        raise InvalidInput("replicas", "the cluster is red (%s unassigned shards): a primary has no copy, which may "
                           "be on a leaving node; make it green first" % health.get("unassigned_shards"))
    data_left = len([n for n in remaining if es_data_node(n)])
    problems: list[str] = []
    for index in sorted(index_settings):
        replicas, wait = _index_copies((index_settings[index] or {}).get("settings") or {})
        need = replicas + 1
        if wait == "all":
            wait_need = replicas + 1
        elif wait is not None and wait.isdigit():
            wait_need = int(wait)
        else:
            wait_need = 1
        if need > data_left:
            problems.append("index %s has number_of_replicas %d: its %d copies of each shard need %d data nodes"
                            % (index, replicas, need, need))
        elif wait_need > data_left:
            problems.append("index %s has index.write.wait_for_active_shards %s: writes wait for %d active copies"
                            % (index, wait, wait_need))
    if problems:
        raise InvalidInput("replicas", "%d would leave %d data node(s): %s; lower those indices' replicas first"
                           % (target, data_left, "; ".join(problems)))
    voting = [str(n.get("name")) for n in nodes if leaving(str(n.get("name"))) and es_master_eligible(n)]
    return {"leaving": going, "voting": voting,
            "remaining_masters": len(masters), "remaining_data_nodes": data_left}


def es_drain_problems(shards: list[Obj], health: Obj | None, leaving: Iterable[str]) -> list[str]:
    """Why the leaving nodes are not drained yet: a shard still on one, or a shard not assigned/started."""
    gone = set(leaving)
    problems: list[str] = []
    held: dict[str, int] = {}
    for shard in shards:
        node = str(shard.get("node") or "")
        if node in gone:
            held[node] = held.get(node, 0) + 1
    problems.extend("%s: still holds %d shard copies" % (node, held[node]) for node in sorted(held, key=ordinal))
    not_started = [s for s in shards if s.get("state") != "STARTED"]
    if not_started:
        problems.append("%d shard copies not started (%s)" % (
            len(not_started), ", ".join(sorted({str(s.get("state")) for s in not_started}))))
    if not health:
        problems.append("the cluster did not answer")
    elif health.get("unassigned_shards"):
        problems.append("%s unassigned shards" % health["unassigned_shards"])
    return problems
