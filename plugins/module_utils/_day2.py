# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Day-2 operations on a datastore's StatefulSet: the work of ``rolling_update`` and ``scale_down``.

The plans come from ``_day2_plan`` (pure); this file reads the cluster, asks the datastore
through ``pods/exec`` (``_exec``, ``_health``) and writes. Each datastore is an ``Engine``: how
to find its primary, the gate a replaced pod must pass, and what a scale-down must clean up.
PostgreSQL, Elasticsearch (green; allocation exclusions) and Cassandra (all nodes ``UN`` as each
node sees the ring; decommission, ``_day2_cassandra``) are implemented. ``none`` gates on pod
readiness alone.

Every step can be interrupted: the state on the cluster (pod revisions, the saved update
strategy, the StatefulSet's replicas, the slots on the primary) says what is left, and the
next run finishes it.
"""

from __future__ import annotations

__metaclass__ = type

import datetime
import time
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_cassandra as cass
from ansible_collections.datastore.kubernetes.plugins.module_utils._batch import run_batch
from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan
from ansible_collections.datastore.kubernetes.plugins.module_utils import _exec, _health
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    DatastoreError,
    ExecError,
    InvalidInput,
    KubeApiError,
    NotFound,
    WaitTimeout,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import check_dns_label
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params
from ansible_collections.datastore.kubernetes.plugins.module_utils._wait import selector_string, watch_until

APPS = "apps/v1"
# How often a gate asks the datastore again while it waits.
GATE_INTERVAL = 0.5
# The postgres client in the container logs in on the local socket as the superuser the container names.
_PSQL = 'exec psql -X -A -t -q -v ON_ERROR_STOP=1 -U "${PGUSER:-${POSTGRES_USER:-postgres}}" -d postgres -c "$1"'


class Gate(DatastoreError):
    """A gate did not pass in time; the rollout stops where it is and a later run goes on from there."""


# -- engines ---------------------------------------------------------------------------------
class Engine:
    """A datastore without a health gate: pods ready is all that is asked."""

    name = "none"

    def __init__(self, client: KubeClient, namespace: str, container: str | None, timeout: float) -> None:
        self.client = client
        self.namespace = namespace
        self.container = container
        self.timeout = timeout

    def find_primary(self, pods: list[Obj]) -> str | None:
        return None

    def gate(self, pods: list[Obj], primary: str | None, params: Params) -> tuple[list[str], Obj | None]:
        """``(problems, report)``: why the datastore is not ready to lose its next pod (empty: it is)."""
        return [], None

    def leftover_slots(self, primary: str, names: list[str]) -> list[str]:
        return []

    def drop_slot(self, primary: str, slot: str) -> bool:
        return True

    # Rolling update: around each pod, and what an interrupted run left behind.
    def leftovers(self, pods: list[Obj], params: Params) -> list[str]:
        """What an interrupted rolling update left in the datastore (shown in the plan; undone by ``resume``)."""
        return []

    def resume(self, pods: list[Obj], params: Params) -> None:
        """Undo what ``leftovers`` reported."""

    def before_replace(self, pod: str, pods: list[Obj], params: Params) -> None:
        """Called right before ``pod`` is deleted."""

    def after_replace(self, pod: str, pods: list[Obj], params: Params) -> None:
        """Called once ``pod``'s successor is Ready, before the gate."""

    # Scale-down: checked before anything is written, then around the lowering of ``replicas``.
    def scale_down_plan(self, sts_name: str, pods: list[Obj], target: int) -> Obj:
        """What the datastore must do (raises ``InvalidInput`` when unsafe); ``{}`` when nothing."""
        return {}

    def before_scale_down(self, info: Obj, pods: list[Obj], params: Params) -> None:
        """Move the data off the leaving pods; returns once they can go."""

    def after_scale_down(self, info: Obj, pods: list[Obj], params: Params) -> None:
        """Clean up once the leaving pods are gone."""


class Postgres(Engine):
    """The primary is the member not in recovery; the gate is asked of it alone (one command per check)."""

    name = "postgres"

    def _state(self, pod: str) -> Obj:
        result = _exec.run(self.client, self.namespace, pod, _health.POSTGRES_COMMAND, container=self.container,
                           timeout=self.timeout)
        if result.rc != 0:
            raise ExecError("pod %s/%s: psql exited with %d: %s" % (
                self.namespace, pod, result.rc, result.stderr_text.strip()[:300]), pod=pod)
        return _health.parse_postgres(result.stdout_text)

    def find_primary(self, pods: list[Obj]) -> str | None:
        for pod in pods:
            if not plan.is_ready(pod):
                continue
            try:
                if not self._state(plan.pod_name(pod)).get("in_recovery"):
                    return plan.pod_name(pod)
            except (ExecError, KubeApiError, ValueError):
                continue
        return None

    def gate(self, pods: list[Obj], primary: str | None, params: Params) -> tuple[list[str], Obj | None]:
        primary = primary or self.find_primary(pods)
        if primary is None:
            return ["no member answers as the primary"], None
        try:
            data: Obj | None = self._state(primary)
        except (ExecError, KubeApiError, ValueError) as exc:
            return ["%s: %s" % (primary, getattr(exc, "msg", None) or exc)], None
        ips = {plan.pod_name(p): (p.get("status") or {}).get("podIP") for p in pods if plan.pod_name(p) != primary}
        problems = plan.postgres_primary_gate(data, primary, ips, params["max_lag_bytes"])
        by_ip = {ip: pod for pod, ip in ips.items() if ip}
        replication = [{"pod": by_ip.get(row.get("client_addr")), "state": row.get("state"),
                        "lag_bytes": row.get("lag_bytes")} for row in (data or {}).get("replication") or []]
        return problems, {"primary": primary, "healthy": not problems, "problems": problems,
                          "timeline": (data or {}).get("wal_timeline"), "replication": replication}

    def _sql(self, pod: str, sql: str) -> str:
        result = _exec.run(self.client, self.namespace, pod, ["sh", "-c", _PSQL, "day2", sql],
                           container=self.container, timeout=self.timeout)
        if result.rc != 0:
            raise ExecError("pod %s/%s: psql exited with %d: %s" % (
                self.namespace, pod, result.rc, result.stderr_text.strip()[:300]), pod=pod)
        return result.stdout_text.strip()

    def leftover_slots(self, primary: str, names: list[str]) -> list[str]:
        if not names:
            return []
        quoted = ",".join("'%s'" % n for n in names)  # slot names are [a-z0-9_] (plan.slot_name)
        out = self._sql(primary, "SELECT slot_name FROM pg_replication_slots WHERE slot_name IN (%s) "
                                 "ORDER BY 1" % quoted)
        return [line for line in out.splitlines() if line]

    def drop_slot(self, primary: str, slot: str) -> bool:
        """Drop ``slot`` unless a walsender still holds it; ``True`` when it is gone."""
        out = self._sql(primary, "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots "
                                 "WHERE slot_name = '%s' AND NOT active; "
                                 "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'" % (slot, slot))
        return out.splitlines()[-1].strip() == "0"


class Elasticsearch(Engine):
    """The HTTP API of a ready pod, asked through ``pods/exec`` (curl in the pod; ``_health.es_command``).

    The "primary" is the elected master: it is replaced last, so the cluster elects a new master once.
    """

    name = "elasticsearch"

    def _ask_pod(self, pods: list[Obj], avoid: tuple[str, ...] = (), below: int | None = None) -> str:
        for pod in pods:
            name = plan.pod_name(pod)
            if name in avoid or (below is not None and plan.ordinal(name) >= below):
                continue
            if plan.is_ready(pod) and not plan.is_terminating(pod):
                return name
        raise ExecError("%s: no ready Elasticsearch pod to ask" % self.namespace)

    def call(self, pod: str, method: str, path: str, body: Obj | None = None) -> Any:
        return _health.es_call(self.client, self.namespace, pod, self.container, method, path, body,
                               timeout=self.timeout)

    def find_primary(self, pods: list[Obj]) -> str | None:
        names = {plan.pod_name(p) for p in pods}
        try:
            answer = self.call(self._ask_pod(pods), "GET", "/_cat/master?format=json&h=node")
        except (ExecError, KubeApiError, ValueError):
            return None
        node = (answer or [{}])[0].get("node")
        return node if node in names else None

    def gate(self, pods: list[Obj], primary: str | None, params: Params) -> tuple[list[str], Obj | None]:
        try:
            pod = self._ask_pod(pods)
            health = self.call(pod, "GET", "/_cluster/health")
            nodes = self.call(pod, "GET", "/_cat/nodes?format=json&h=name,node.role,master")
        except (ExecError, KubeApiError, ValueError) as exc:
            return [str(getattr(exc, "msg", None) or exc)], None
        expected = [plan.pod_name(p) for p in pods]
        problems = plan.es_gate(health, [n.get("name") for n in nodes or []], expected, params["allow_yellow"])
        master = [n.get("name") for n in nodes or [] if n.get("master") == "*"]
        return problems, {"healthy": not problems, "problems": problems, "status": (health or {}).get("status"),
                          "nodes": sorted(str(n.get("name")) for n in nodes or []),
                          "master": master[0] if master else None, "source_pod": pod,
                          "cluster": {k: (health or {}).get(k) for k in (
                              "number_of_nodes", "active_shards", "relocating_shards", "initializing_shards",
                              "unassigned_shards")}}

    def _settings(self, pod: str) -> Obj:
        return self.call(pod, "GET", "/_cluster/settings?flat_settings=true") or {}

    def _put_settings(self, pod: str, values: Obj) -> None:
        self.call(pod, "PUT", "/_cluster/settings", {"persistent": values})

    def leftovers(self, pods: list[Obj], params: Params) -> list[str]:
        try:
            current = plan.es_allocation_setting(self._settings(self._ask_pod(pods)), plan.ALLOCATION_ENABLE)
        except (ExecError, KubeApiError, ValueError):
            return []
        if current == "primaries":
            return ["%s is primaries (an interrupted run): reset" % plan.ALLOCATION_ENABLE]
        return []

    def resume(self, pods: list[Obj], params: Params) -> None:
        self._put_settings(self._ask_pod(pods), {plan.ALLOCATION_ENABLE: None})

    def before_replace(self, pod: str, pods: list[Obj], params: Params) -> None:
        if params["disable_allocation"]:
            # Replicas of the stopped node are not rebuilt elsewhere meanwhile; its copies come back with it.
            self._put_settings(self._ask_pod(pods, avoid=(pod,)), {plan.ALLOCATION_ENABLE: "primaries"})

    def after_replace(self, pod: str, pods: list[Obj], params: Params) -> None:
        if params["disable_allocation"]:
            self._put_settings(self._ask_pod(pods), {plan.ALLOCATION_ENABLE: None})

    def scale_down_plan(self, sts_name: str, pods: list[Obj], target: int) -> Obj:
        if target == 0:
            return plan.es_scale_down_check(sts_name, 0, [], {}, None)
        pod = self._ask_pod(pods, below=target)
        nodes = self.call(pod, "GET", "/_cat/nodes?format=json&h=name,node.role,master") or []
        settings = self.call(pod, "GET", "/_settings/index.number_of_replicas,index.auto_expand_replicas,"
                                         "index.write.wait_for_active_shards?flat_settings=true&expand_wildcards=all")
        health = self.call(pod, "GET", "/_cluster/health")
        info = plan.es_scale_down_check(sts_name, target, nodes, settings or {}, health)
        cluster = self._settings(pod)
        voting = self.call(pod, "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination."
                                       "voting_config_exclusions") or {}
        excluded = (((voting.get("metadata") or {}).get("cluster_coordination") or {})
                    .get("voting_config_exclusions") or [])
        current = plan.es_allocation_setting(cluster, plan.EXCLUDE_NAME)
        voting_before = sorted(str(v.get("node_name")) for v in excluded)
        info.update(pod=pod, exclude_before=current, voting_before=voting_before,
                    ours=plan.es_own_names(current, sts_name, target),
                    voting_ours=plan.es_own_names(",".join(voting_before), sts_name, target))
        return info

    def before_scale_down(self, info: Obj, pods: list[Obj], params: Params) -> None:
        pod = info["pod"]
        if info["leaving"]:
            value = plan.es_exclusion(info["exclude_before"], info["leaving"], [])
            self._put_settings(pod, {plan.EXCLUDE_NAME: value})
        votes = [n for n in info["voting"] if n not in info["voting_before"]]
        if votes:
            self.call(pod, "POST", "/_cluster/voting_config_exclusions?node_names=%s" % ",".join(votes))
        deadline = time.monotonic() + params["wait_timeout"]
        while info["leaving"]:
            shards = self.call(pod, "GET", "/_cat/shards?format=json&h=index,shard,prirep,state,node") or []
            health = self.call(pod, "GET", "/_cluster/health")
            problems = plan.es_drain_problems(shards, health, info["leaving"])
            if not problems:
                break
            if time.monotonic() >= deadline:
                raise WaitTimeout("%s: the leaving nodes are not drained after %ss: %s. The exclusions stay; run "
                                  "again to go on" % (info["ref"], params["wait_timeout"], "; ".join(problems)),
                                  problems=problems)
            time.sleep(GATE_INTERVAL * 4)

    def after_scale_down(self, info: Obj, pods: list[Obj], params: Params) -> None:
        pod = info["pod"]
        current = plan.es_allocation_setting(self._settings(pod), plan.EXCLUDE_NAME)
        value = plan.es_exclusion(current, [], plan.es_own_names(current, info["sts"], info["to"]))
        if value != current:
            self._put_settings(pod, {plan.EXCLUDE_NAME: value})
        if info["voting"] or info["voting_ours"]:
            # Once the nodes have left (their pods are gone); this clears every voting exclusion.
            self.call(pod, "DELETE", "/_cluster/voting_config_exclusions")


class Cassandra(Engine):
    """``nodetool`` and ``cqlsh`` inside the pods. No primary: the seeds are the first ordinals, which the
    highest-first order replaces last (nothing else is special about them)."""

    name = "cassandra"

    def _run(self, pod: str, command: list[str], timeout: float | None = None) -> str:
        argv = cass.quick_jvm(command) if command[0] == "nodetool" else command
        result = _exec.run(self.client, self.namespace, pod, argv, container=self.container,
                           timeout=timeout or self.timeout)
        if result.rc != 0:
            raise ExecError("pod %s/%s: %s exited with %d: %s" % (
                self.namespace, pod, " ".join(command[:2]), result.rc,
                (cass.without_jvm_notice(result.stderr_text).strip() or result.stdout_text.strip())[-300:]), pod=pod)
        return result.stdout_text

    @staticmethod
    def _on_each(func: Any, args_list: list[tuple[Any, ...]]) -> list[tuple[bool, Any]]:
        """``func(*args)`` for every entry at once (each a command in a pod): ``(True, value)``, or ``(False,
        exception)`` when the command could not run, failed or printed what could not be read."""
        def one(*args: Any) -> tuple[bool, Any]:
            try:
                return True, func(*args)
            except (ExecError, KubeApiError, ValueError) as exc:
                return False, exc

        outcomes = []
        for ok, value in run_batch(one, args_list, concurrency=max(1, len(args_list))):
            if not ok:
                raise value  # anything else is a bug: not hidden
            outcomes.append(value)
        return outcomes

    def _status(self, pod: str) -> list[Obj]:
        return _health.parse_nodetool_status(self._run(pod, _health.CASSANDRA_COMMAND))

    @staticmethod
    def _ips(pods: list[Obj]) -> dict[str, str | None]:
        return {plan.pod_name(p): (p.get("status") or {}).get("podIP") for p in pods}

    def _ask_pod(self, pods: list[Obj], below: int) -> str:
        for pod in pods:
            if plan.ordinal(plan.pod_name(pod)) < below and plan.is_ready(pod) and not plan.is_terminating(pod):
                return plan.pod_name(pod)
        raise ExecError("%s: no ready Cassandra pod below ordinal %d to ask" % (self.namespace, below))

    def gate(self, pods: list[Obj], primary: str | None, params: Params) -> tuple[list[str], Obj | None]:
        """Every node ``UN`` in ``nodetool status`` as each pod sees the ring. Every pod is asked at once (each
        ``nodetool`` is a JVM of its own: one after another they cost seconds); the views are read highest
        ordinal first, so a node that has just come back speaks first, and the first view with a problem is
        the answer."""
        ips = self._ips(pods)
        asked = sorted(ips, key=plan.ordinal, reverse=True)
        views = self._on_each(self._status, [(pod,) for pod in asked])
        nodes: list[Obj] = []
        for pod, (ok, value) in zip(asked, views):
            if not ok:
                return ["%s: %s" % (pod, getattr(value, "msg", None) or value)], None
            nodes = value
            problems = cass.view_problems(pod, nodes, ips)
            if problems:
                return problems, None
        by_ip = {ip: name for name, ip in ips.items() if ip}
        ring = [{"pod": by_ip.get(n["address"]), "address": n["address"], "code": n["code"], "load": n["load"],
                 "owns_percent": n["owns_percent"], "host_id": n["host_id"], "datacenter": n["datacenter"],
                 "rack": n["rack"]} for n in nodes]
        return [], {"healthy": True, "problems": [], "nodes": ring, "asked": asked}

    def before_replace(self, pod: str, pods: list[Obj], params: Params) -> None:
        if not params.get("drain"):
            return
        current = [p for p in pods if plan.pod_name(p) == pod]
        if not current or not plan.is_ready(current[0]) or plan.is_terminating(current[0]):
            return  # a stuck pod serves nothing: there is nothing to drain
        if cass.prestop_drains(current[0], self.container):
            return  # its preStop hook drains it as it stops: a second drain here would only cost a JVM start
        self._run(pod, ["nodetool", "drain"], timeout=float(params["pod_timeout"]))

    def scale_down_plan(self, sts_name: str, pods: list[Obj], target: int) -> Obj:
        if target == 0:
            return cass.scale_down_check(sts_name, 0, [], {}, [], {})
        if not any(plan.ordinal(plan.pod_name(p)) >= target for p in pods):
            return {}
        peer = self._ask_pod(pods, target)
        nodes = self._status(peer)
        keyspaces = cass.parse_cql_json(self._run(peer, ["cqlsh", "-e", cass.KEYSPACES_CQL]))
        # Each staying pod's free space, and each leaving pod's own view of the ring, all at once. A peer
        # learns a node's load through gossip, about once a minute: right after writes its figure is low.
        # The leaving node's own figure is current.
        staying = [plan.pod_name(p) for p in pods if plan.ordinal(plan.pod_name(p)) < target]
        leaving = [plan.pod_name(p) for p in pods if plan.ordinal(plan.pod_name(p)) >= target and plan.is_ready(p)
                   and not plan.is_terminating(p)]
        asks = [(name, cass.DF_COMMAND) for name in staying] + [(name, _health.CASSANDRA_COMMAND) for name in leaving]
        answers = self._on_each(self._run, asks)
        free: dict[str, int | None] = {}
        own: dict[str, list[Obj]] = {}
        for (name, command), (ok, value) in zip(asks, answers):
            try:
                if command is cass.DF_COMMAND:
                    free[name] = cass.parse_df_available(value) if ok else None
                elif ok:
                    own[name] = _health.parse_nodetool_status(value)
            except ValueError:
                if command is cass.DF_COMMAND:
                    free[name] = None  # not known: the check refuses
        nodes = cass.with_own_loads(nodes, own, self._ips(pods))
        info = cass.scale_down_check(sts_name, target, nodes, self._ips(pods), keyspaces, free)
        ring_pods = info["staying"] + [n["pod"] for n in info["leaving"]]
        stale = self._stale(ring_pods, self._ips(pods), peer, nodes)[0]
        info.update(pod=peer, decommissioned=[], ring_pods=ring_pods, stale=stale, cleared=[])
        return info

    def _gossip(self, pod: str) -> dict[str, Obj]:
        return cass.parse_gossipinfo(self._run(pod, cass.GOSSIPINFO_COMMAND))

    def _stale(self, ring_pods: list[str], ips: dict[str, str | None], peer: str, nodes: list[Obj] | None = None,
               gone: tuple[str, ...] = ()) -> tuple[list[Obj], dict[str, set[str]]]:
        """The stale endpoints any of ``ring_pods`` gossips about (``cass.stale_endpoints``, the ring as ``peer``
        sees it), and the addresses each pod gossips about; every pod asked at once."""
        outcomes = self._on_each(self._gossip, [(pod,) for pod in ring_pods])
        views: dict[str, dict[str, Obj]] = {}
        for pod, (ok, value) in zip(ring_pods, outcomes):
            if not ok:
                raise value
            views[pod] = value
        known = {pod: set(view) for pod, view in views.items()}
        addresses = {ip for ip in ips.values() if ip}
        if all(seen <= addresses for seen in known.values()):
            return [], known
        nodes = self._status(peer) if nodes is None else nodes
        stale: dict[str, Obj] = {}
        for view in views.values():
            for entry in cass.stale_endpoints(view, nodes, ips, gone):
                stale.setdefault(entry["address"], entry)
        return [stale[address] for address in sorted(stale)], known

    def _clear_stale(self, info: Obj, ring_pods: list[str], pods: list[Obj], deadline: float,
                     gone: tuple[str, ...] = ()) -> None:
        """``nodetool assassinate`` of every stale endpoint, each from a pod that no longer gossips about it.

        There Cassandra marks the address as left at once. In a pod that still knows the address it
        would first hold that pod's gossip for the ring delay (30 s), long enough for its peers to think
        it down; every node forgets such an address on its own within minutes (2-4 here after a rolling
        restart), so the run waits for one that has. A ring of one pod has no peer to mislead, and is used as it is.
        """
        ips = self._ips(pods)
        while True:
            stale, known = self._stale(ring_pods, ips, info["pod"], gone=gone)
            if not stale:
                return
            for entry in stale:
                free = [pod for pod in ring_pods if entry["address"] not in known[pod]]
                if not free and len(ring_pods) == 1:
                    free = ring_pods
                if not free:
                    continue
                try:
                    self._run(free[0], cass.assassinate_command(entry["address"]), timeout=180.0)
                except ExecError:
                    continue  # its state changed meanwhile: looked at again below
                info["cleared"].append({"address": entry["address"], "host_id": entry["host_id"],
                                        "status": entry["status"], "by": free[0]})
            if time.monotonic() >= deadline:
                raise WaitTimeout("%s: the ring still gossips about %s (no pod's address; %s); clear them with "
                                  "nodetool assassinate <address> in a staying pod; run again to go on" % (
                                      info["ref"], ", ".join(e["address"] for e in stale),
                                      "; ".join("%s: %s" % (e["address"], e["reason"]) for e in stale)))
            time.sleep(GATE_INTERVAL * 8)

    def before_scale_down(self, info: Obj, pods: list[Obj], params: Params) -> None:
        """Decommission the leaving nodes one at a time, highest first; each confirmed gone from the ring of every
        pod that stays."""
        peer = info["pod"]
        # An address a pod had before it restarted, still in gossip, would come back in the ring as a down
        # node holding the tokens of the node that leaves: cleared first.
        self._clear_stale(info, info["ring_pods"], pods, time.monotonic() + params["decommission_timeout"])
        for node in info["leaving"]:
            start = time.monotonic()
            deadline = start + params["decommission_timeout"]
            entry = cass.still_in_ring(self._status(peer), node)
            if entry is not None and entry["code"] == "UN":
                try:
                    # Blocks until the node has streamed its ranges away and left the ring.
                    self._run(node["pod"], cass.decommission_command(info),
                              timeout=float(params["decommission_timeout"]))
                except ExecError:
                    entry = cass.still_in_ring(self._status(peer), node)
                    if entry is not None and entry["code"] == "UN":
                        raise
            # Gone from the ring as every pod that stays sees it: a peer that missed the node's LEFT state
            # would keep it, once its pod is gone, as a down node for ever.
            while True:
                listed = None
                for pod in info["staying"]:
                    entry = cass.still_in_ring(self._status(pod), node)
                    if entry is not None:
                        listed = (pod, entry["code"])
                        break
                if listed is None:
                    break
                if time.monotonic() >= deadline:
                    raise WaitTimeout("%s: %s is still in the ring as %s sees it (%s) after %ss; replicas is "
                                      "unchanged; run again to go on" % (
                                          info["ref"], node["pod"], listed[0], listed[1],
                                          params["decommission_timeout"]))
                time.sleep(GATE_INTERVAL * 4)
            info["decommissioned"].append({"pod": node["pod"], "host_id": node["host_id"],
                                           "address": node["address"], "load_bytes": node["load_bytes"],
                                           "seconds": round(time.monotonic() - start, 3)})

    def after_scale_down(self, info: Obj, pods: list[Obj], params: Params) -> None:
        """Once the pods are gone: no staying pod lists a decommissioned node again.

        Seen here (not every time): a node that had left the ring came back in a peer's ``nodetool status``
        as ``DN`` once its pod stopped. Such an entry fails every later gate, so the run reports it rather
        than end as if all was well.
        """
        if not info.get("decommissioned"):
            return
        time.sleep(GATE_INTERVAL * 4)
        gone = tuple(d["host_id"] for d in info["decommissioned"] if d.get("host_id"))
        self._clear_stale(info, info["staying"], [p for p in pods if plan.pod_name(p) in info["staying"]],
                          time.monotonic() + params["decommission_timeout"], gone)
        for pod in info["staying"]:
            nodes = self._status(pod)
            for done in info["decommissioned"]:
                entry = cass.still_in_ring(nodes, done)
                if entry is not None:
                    raise DatastoreError(
                        "%s: %s left the ring and replicas is lowered, but once its pod stopped %s lists it again "
                        "as %s (%s, host id %s); check it is gone from the ring with nodetool status, else clear "
                        "the entry with nodetool assassinate %s in a staying pod" % (
                            info["ref"], done["pod"], pod, entry["code"], entry["address"], done["host_id"],
                            entry["address"]), problems=[done["pod"]])


ENGINES = {"postgres": Postgres, "elasticsearch": Elasticsearch, "cassandra": Cassandra, "none": Engine}


def engine_for(task: Task, client: KubeClient) -> Engine:
    params = task.params
    return ENGINES[params["engine"]](client, params["namespace"], params.get("container"),
                                     float(params.get("request_timeout") or 30.0))


# -- reading -----------------------------------------------------------------------------------
def read_statefulset(client: KubeClient, namespace: str, name: str) -> Obj:
    sts = client.get(APPS, "StatefulSet", name, namespace)
    if sts is None:
        raise NotFound("StatefulSet %s/%s does not exist" % (namespace, name))
    return sts


def read_pods(client: KubeClient, sts: Obj) -> list[Obj]:
    selector = selector_string(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels"))
    items = client.list("v1", "Pod", sts["metadata"]["namespace"], label_selector=selector).get("items") or []
    return plan.members(sts, items)


def observed(client: KubeClient, sts: Obj, timeout: float) -> Obj:
    """The StatefulSet once its controller has seen its latest spec (its status names the update revision)."""
    meta = sts["metadata"]

    def seen(obj: Obj | None) -> bool:
        if obj is None:
            return False
        return bool((obj.get("status") or {}).get("observedGeneration", 0) >= obj["metadata"]["generation"])

    found = watch_until(client, APPS, "StatefulSet", meta["namespace"], meta["name"], seen, timeout)
    return found or sts


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ref(params: Params) -> str:
    return "StatefulSet %s/%s" % (params["namespace"], params["name"])


def wait_gate(engine: Engine, client: KubeClient, sts: Obj, params: Params, primary: str | None,
              after: str) -> tuple[Obj | None, float]:
    """Ask the datastore until its gate passes; ``(report, seconds waited)``. Raises ``Gate`` on timeout."""
    start = time.monotonic()
    deadline = start + params["gate_timeout"]
    while True:
        pods = read_pods(client, sts)
        not_ready = [plan.pod_name(p) for p in pods if not plan.is_ready(p) or plan.is_terminating(p)]
        report = None
        problems = ["%s: not ready" % n for n in not_ready]
        if not problems:
            problems, report = engine.gate(pods, primary, params)
        if not problems:
            return report, time.monotonic() - start
        if time.monotonic() >= deadline:
            raise Gate("%s: the %s gate did not pass within %ss %s: %s. Nothing more was replaced; run again to "
                       "go on from here" % (_ref(params), engine.name, params["gate_timeout"], after,
                                            "; ".join(problems)), problems=problems)
        time.sleep(GATE_INTERVAL)


# -- rolling update ---------------------------------------------------------------------------
def validate_update(params: Params) -> None:
    check_dns_label("name", params.get("name"))
    check_dns_label("namespace", params.get("namespace"))
    if params.get("container") is not None:
        check_dns_label("container", params["container"])
    if params.get("image") is not None and not str(params["image"]).strip():
        raise InvalidInput("image", "must not be empty")
    plan.validate_resources(params.get("resources"))
    for idx, name in enumerate(params.get("config_maps") or []):
        check_dns_label("config_maps[%d]" % idx, name)
    for field in ("max_lag_bytes",):
        if params[field] < 0:
            raise InvalidInput(field, "must be 0 or more")
    for field in ("gate_timeout", "pod_timeout"):
        if params[field] <= 0:
            raise InvalidInput(field, "must be more than 0 seconds")


def _wanted_annotations(client: KubeClient, params: Params) -> dict[str, str]:
    annotations = dict(params.get("template_annotations") or {})
    if params.get("config_maps"):
        found = []
        for name in params["config_maps"]:
            cm = client.get("v1", "ConfigMap", name, params["namespace"])
            if cm is None:
                raise InvalidInput("config_maps", "ConfigMap %s/%s does not exist" % (params["namespace"], name))
            found.append(cm)
        annotations[plan.CONFIG_HASH] = plan.config_hash(found)
    if params.get("restart"):
        annotations[plan.RESTARTED_AT] = _now()
    return annotations


def replace_pod(client: KubeClient, namespace: str, name: str, pod: Obj | None, update_revision: str,
                timeout: float) -> float:
    """Delete ``pod`` (if it is there) and wait for its successor, Ready on ``update_revision``; seconds taken."""
    start = time.monotonic()
    old_uid = pod["metadata"]["uid"] if pod is not None else None
    # A pod already on the update revision (not ready yet) is waited for, not replaced.
    keep = pod is not None and plan.revision(pod) == update_revision
    if pod is not None and not keep:
        client.delete("v1", "Pod", name, namespace, preconditions={"uid": old_uid})

    def successor_ready(obj: Obj | None) -> bool:
        if obj is None or plan.revision(obj) != update_revision or plan.is_terminating(obj):
            return False
        return plan.is_ready(obj) and (keep or obj["metadata"]["uid"] != old_uid)

    try:
        watch_until(client, "v1", "Pod", namespace, name, successor_ready, timeout)
    except WaitTimeout as exc:
        raise WaitTimeout("pod %s/%s is not Ready on revision %s after %ss; run again to go on from here"
                          % (namespace, name, update_revision, timeout), last=exc.details.get("last"))
    return time.monotonic() - start


def run_rolling_update(task: Task, client: KubeClient) -> Result:
    params = task.params
    validate_update(params)
    ns, name = params["namespace"], params["name"]
    sts = read_statefulset(client, ns, name)
    container = plan.pick_container(sts, params.get("container"))
    patch, before, after = plan.template_patch(sts, container, params.get("image"), params.get("resources"),
                                               _wanted_annotations(client, params))
    engine = engine_for(task, client)
    pods = read_pods(client, sts)
    primary = engine.find_primary(pods)
    status = sts.get("status") or {}
    stale_status = status.get("observedGeneration", 0) < sts["metadata"]["generation"]
    target = None if stale_status else status.get("updateRevision")
    steps = plan.plan_update(pods, target, bool(patch), primary)
    left = engine.leftovers(pods, params)
    result: Result = {
        "changed": bool(patch or steps["order"] or plan.strategy_restore(sts) or left),
        "plan": {"pods": steps["order"], "stuck": steps["stuck"], "primary": primary,
                 "gates": cass.gate_description(params["drain"]) if engine.name == "cassandra" else
                 plan.gate_description(engine.name, params["max_lag_bytes"], params["allow_yellow"],
                                       params["disable_allocation"]),
                 "template": after, "resume": left},
        "pods": [], "stuck_deleted": [],
    }
    if task.diff:
        result["diff"] = {"before": before, "after": after}
    switch_to = _switchover_target(params, engine.name, primary, [plan.pod_name(p) for p in pods], steps["order"])
    result["plan"]["switchover"] = switch_to
    if steps["stuck"] and not params["delete_stuck_pods"]:
        raise InvalidInput("delete_stuck_pods", "%s: %s not ready on an old revision; the StatefulSet controller "
                           "waits on it forever. Fix the cause, or set delete_stuck_pods=true to replace it first"
                           % (_ref(params), ", ".join(steps["stuck"])), stuck=steps["stuck"])
    if task.check_mode or not result["changed"]:
        return result

    if left:
        engine.resume(pods, params)
    if steps["order"] and not steps["stuck"]:
        # Nothing is written while the datastore is not healthy to begin with.
        wait_gate(engine, client, sts, params, primary, "before the first pod")
    takeover = plan.strategy_takeover(sts) if steps["order"] else None
    body: Obj = {}
    if patch:
        body = {"spec": {"template": patch}}
    if takeover:
        body.setdefault("spec", {}).update(takeover["spec"])
        body["metadata"] = takeover["metadata"]
    if body:
        sts = client.patch(APPS, "StatefulSet", name, ns, body)
    sts = observed(client, sts, params["pod_timeout"])
    update_revision = (sts.get("status") or {}).get("updateRevision")
    if not update_revision:
        raise KubeApiError("%s: the controller reports no update revision" % _ref(params))

    # The order is read again from the pods as they are now: an earlier run may have replaced some.
    steps = plan.plan_update(read_pods(client, sts), update_revision, False, primary)
    stuck = set(steps["stuck"])
    for pod_name in steps["order"]:
        pod = client.get("v1", "Pod", pod_name, ns)
        if pod is not None and plan.revision(pod) == update_revision and plan.is_ready(pod):
            continue
        if switch_to and pod_name == primary:
            # The primary's pod goes as a replica: writers lose the switchover's downtime, not its restart.
            result["switchover"] = _switch_over(task, client, switch_to)
            primary = switch_to
        started = time.monotonic()
        engine.before_replace(pod_name, read_pods(client, sts), params)
        before_seconds = time.monotonic() - started
        seconds = replace_pod(client, ns, pod_name, pod, update_revision, params["pod_timeout"])
        engine.after_replace(pod_name, read_pods(client, sts), params)
        entry: Obj = {"pod": pod_name, "before_seconds": round(before_seconds, 3), "ready_seconds": round(seconds, 3)}
        if pod_name in stuck:
            result["stuck_deleted"].append(pod_name)
            stuck.discard(pod_name)
        if not stuck:
            report, gate_seconds = wait_gate(engine, client, sts, params, primary, "after %s" % pod_name)
            result["health"] = report
            entry["gate_seconds"] = round(gate_seconds, 3)
        result["pods"].append(entry)

    restore = plan.strategy_restore(client.get(APPS, "StatefulSet", name, ns) or sts)
    if restore:
        client.patch(APPS, "StatefulSet", name, ns, restore)
    result["update_revision"] = update_revision
    return result


def _switchover_target(params: Params, engine: str, primary: str | None, members: list[str],
                       order: list[str]) -> str | None:
    """The pod to switch over to before the primary's pod is replaced (``switchover_to``), when it is to be."""
    target = params.get("switchover_to")
    if target is None:
        return None
    if engine != "postgres":
        raise InvalidInput("switchover_to", "is for engine postgres only")
    if target not in members:
        raise InvalidInput("switchover_to", "%s is not a pod of the %s (pods: %s)"
                           % (target, _ref(params), ", ".join(members) or "none"))
    if primary is None or primary not in order or target == primary:
        return None
    return str(target)


def _switch_over(task: Task, client: KubeClient, target: str) -> list[Obj]:
    # Imported here: _switchover imports this file.
    from ansible_collections.datastore.kubernetes.plugins.module_utils import _switchover  # pylint: disable=import-outside-toplevel

    params = task.params
    sub = Task(params={"name": params["name"], "namespace": params["namespace"], "to": target,
                       "container": params.get("container"), "service": None, "labels": {},
                       "max_lag_bytes": params["max_lag_bytes"], "timeout": params["gate_timeout"],
                       "request_timeout": params.get("request_timeout") or 30.0})
    done: list[Obj] = _switchover.run_switchover(sub, client).get("done") or []
    return done


# -- scale-down ---------------------------------------------------------------------------------
def validate_scale_down(params: Params) -> None:
    check_dns_label("name", params.get("name"))
    check_dns_label("namespace", params.get("namespace"))
    if params.get("container") is not None:
        check_dns_label("container", params["container"])
    if params["replicas"] < 0:
        raise InvalidInput("replicas", "must be 0 or more")
    for field in ("wait_timeout", "decommission_timeout"):
        if params[field] <= 0:
            raise InvalidInput(field, "must be more than 0 seconds")


def run_scale_down(task: Task, client: KubeClient) -> Result:
    params = task.params
    validate_scale_down(params)
    ns, name, target = params["namespace"], params["name"], params["replicas"]
    sts = read_statefulset(client, ns, name)
    current = int((sts.get("spec") or {}).get("replicas", 1))
    if target > current:
        raise InvalidInput("replicas", "%d is more than the %d the %s has; this module only scales down"
                           % (target, current, _ref(params)))
    engine = engine_for(task, client)
    pods = read_pods(client, sts)
    primary = engine.find_primary(pods)
    if engine.name == "postgres" and target == 0:
        primary = primary or "%s-0" % name
    elif engine.name == "postgres" and primary is None:
        raise DatastoreError("%s: no PostgreSQL member answers as the primary; nothing was changed" % _ref(params))
    steps = plan.plan_scale_down(name, current, target, primary, engine.name)
    # The datastore's own checks and moves (Elasticsearch: exclusions); raises before any write when unsafe.
    info = engine.scale_down_plan(name, pods, target)
    if info:
        info.update(sts=name, to=target, ref=_ref(params))
    # Left over by an earlier, interrupted run: pods above the target still there, slots, claims.
    gone = ["%s-%d" % (name, n) for n in range(target, target + 64)]
    leftovers = [p for p in (plan.pod_name(p) for p in pods) if plan.ordinal(p) >= target and p not in steps["remove"]]
    removing = sorted(set(steps["remove"]) | set(leftovers), key=plan.ordinal, reverse=True)
    slots = engine.leftover_slots(primary, [plan.slot_name(p) for p in gone]) if primary else []
    claims_there = []
    if params["delete_pvcs"]:
        wanted = plan.claim_names(sts, gone)
        claims_there = [c["metadata"]["name"] for c in client.list("v1", "PersistentVolumeClaim", ns).get("items") or []
                        if c["metadata"]["name"] in wanted]
    cleanup = bool(info.get("ours") or info.get("voting_ours"))
    result: Result = {
        "changed": bool(removing or slots or claims_there or current != target or cleanup),
        "plan": {"from": current, "to": target, "remove": removing, "primary": primary, "slots": slots,
                 "claims": claims_there if params["delete_pvcs"] else []},
        "removed": [], "slots_dropped": [], "claims_deleted": [],
    }
    if info and engine.name == "cassandra":
        result["plan"]["cassandra"] = {
            "decommission": [{"pod": n["pod"], "host_id": n["host_id"], "state": n["code"], "load_bytes": n["load_bytes"]}
                             for n in info["leaving"]],
            "asked": info["pod"], "load_moving_bytes": info["load_moving_bytes"], "share_bytes": info["share_bytes"],
            "free_bytes": info["free_bytes"], "force_for": info["force_for"],
            "clear_stale": [{"address": e["address"], "host_id": e["host_id"], "status": e["status"],
                             "reason": e["reason"]} for e in info["stale"]]}
        result["decommissioned"] = info["decommissioned"]
        result["stale_cleared"] = info["cleared"]
    elif info:
        result["plan"]["elasticsearch"] = {
            "exclude": info["leaving"], "voting_exclusions": info["voting"],
            "remaining_master_eligible": info["remaining_masters"], "remaining_data_nodes": info["remaining_data_nodes"],
            "clear_exclusions": sorted(set(info["leaving"]) | set(info["ours"]) | set(info["voting_ours"]),
                                       key=plan.ordinal, reverse=True)}
    if task.diff:
        result["diff"] = {"before": {"replicas": current}, "after": {"replicas": target}}
    if task.check_mode or not result["changed"]:
        return result

    if info and current != target:
        engine.before_scale_down(info, pods, params)
    if current != target:
        client.patch(APPS, "StatefulSet", name, ns, {"spec": {"replicas": target}})
    for pod in removing:
        try:
            watch_until(client, "v1", "Pod", ns, pod, lambda o: o is None, params["wait_timeout"])
        except WaitTimeout:
            raise WaitTimeout("%s: pod %s is still there after %ss; run again to finish"
                              % (_ref(params), pod, params["wait_timeout"]))
        result["removed"].append(pod)
    if primary:
        deadline = time.monotonic() + params["wait_timeout"]
        for slot in slots:
            # The walsender of a removed replica ends with its connection; until then the slot is active.
            while not engine.drop_slot(primary, slot):
                if time.monotonic() >= deadline:
                    raise WaitTimeout("%s: replication slot %s on %s is still active after %ss; run again to finish"
                                      % (_ref(params), slot, primary, params["wait_timeout"]))
                time.sleep(GATE_INTERVAL)
            result["slots_dropped"].append(slot)
    if info:
        engine.after_scale_down(info, pods, params)
    for claim in claims_there:
        client.delete("v1", "PersistentVolumeClaim", claim, ns)
        result["claims_deleted"].append(claim)
    return result
