# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cassandra's part of the day-2 plans: the gate of a rolling restart and the checks of a scale-down.

Pure: decisions from what the nodes printed (``nodetool status`` as ``_health.parse_nodetool_status``
reads it, ``cqlsh`` ``SELECT JSON`` rows, ``df``, ``nodetool netstats``), no client. The engine in
``_day2`` runs the commands through ``pods/exec``.

A scale-down decommissions the leaving nodes (the highest ordinals) one at a time, then lowers
``replicas``. It is refused before anything is written when the ring that stays could not serve
or hold the data: ``replicas`` 0, a keyspace whose replication factor (SimpleStrategy's
``replication_factor``; NetworkTopologyStrategy's count for a data center) is more than the nodes
that stay (in that data center), a node not up and normal, or a node that stays without the free
space for its share of what the leaving nodes hold.
"""

from __future__ import annotations

__metaclass__ = type

import json
import math
import re
from typing import Iterable

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj

# The keyspaces' replication, one JSON row per keyspace (cqlsh prints them under a "[json]" header).
KEYSPACES_CQL = "SELECT JSON keyspace_name, replication FROM system_schema.keyspaces"
# Local to each node, never replicated.
LOCAL_KEYSPACES = ("system", "system_schema", "system_views", "system_virtual_schema")
# Replicated system keyspaces and the replication factor Cassandra gives them: they count only
# when an operator raised it (or gave them NetworkTopologyStrategy); at their defaults a smaller
# ring is what Cassandra itself expects of them.
SYSTEM_DEFAULT_RF = {"system_auth": 1, "system_distributed": 3, "system_traces": 2}
# The volume the data lives on (the cassandra role's claim); the command prints its free bytes.
DATA_DIRECTORY = "/var/lib/cassandra"
DF_COMMAND = ["sh", "-c", 'exec df -P -B1 "${CASSANDRA_DATA:-%s}"' % DATA_DIRECTORY]


# nodetool is a JVM of its own for each command, and the gate runs one in every pod: most of its time is the
# JVM's start-up and compilation. The client JIT alone (no C2) costs half the CPU for a run this short (measured
# in the pods: 0.65 s of CPU against 1.2 s); JAVA_TOOL_OPTIONS keeps whatever the image sets there.
_QUICK_JVM = 'JAVA_TOOL_OPTIONS="${JAVA_TOOL_OPTIONS:+$JAVA_TOOL_OPTIONS }-XX:TieredStopAtLevel=1" exec "$@"'
_PICKED_UP = re.compile(r"^Picked up JAVA_TOOL_OPTIONS:.*\n?", re.M)


def quick_jvm(command: list[str]) -> list[str]:
    """``command`` (a ``nodetool`` command) run with the client JIT only."""
    return ["sh", "-c", _QUICK_JVM, "sh"] + list(command)


def without_jvm_notice(text: str) -> str:
    """``stderr`` without the JVM's notice that it picked up ``JAVA_TOOL_OPTIONS``."""
    return _PICKED_UP.sub("", text)


def parse_cql_json(text: str | None) -> list[Obj]:
    """The rows of a ``SELECT JSON`` as cqlsh prints them (one JSON object a line)."""
    rows = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    if not rows and "[json]" not in (text or ""):
        raise ValueError("cqlsh printed no rows: %s" % (text or "").strip()[:200])
    return rows


def parse_df_available(text: str | None) -> int:
    """Free bytes of ``df -P -B1 <dir>``: the "Available" column of its last line."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError("df printed no file system: %s" % (text or "").strip()[:200])
    fields = lines[-1].split()
    if len(fields) < 4 or not fields[3].isdigit():
        raise ValueError("df printed no free bytes: %s" % lines[-1][:200])
    return int(fields[3])


def parse_netstats_mode(text: str | None) -> str | None:
    """The node's own mode in ``nodetool netstats`` (NORMAL, LEAVING, DECOMMISSIONED, DRAINED...)."""
    match = re.search(r"^Mode:\s*(\S+)", text or "", re.M)
    return match.group(1).upper() if match else None


def replication_factor(value: object) -> int:
    """A replication factor as the schema stores it: ``"3"``, or ``"3/1"`` (transient replicas)."""
    text = str(value).split("/", 1)[0].strip()
    if not text.isdigit():
        raise ValueError("replication factor %r is not a number" % (value,))
    return int(text)


def keyspace_needs(rows: Iterable[Obj], defaults: bool = False) -> list[Obj]:
    """What each replicated keyspace asks of the ring: ``{keyspace, strategy, dc (None: any), rf}``.

    ``defaults``: only the system keyspaces left at Cassandra's own replication factor (the others are skipped).
    """
    needs = []
    for row in rows:
        name = str(row.get("keyspace_name"))
        replication = row.get("replication") or {}
        strategy = str(replication.get("class", "")).rsplit(".", 1)[-1]
        if name in LOCAL_KEYSPACES or strategy in ("LocalStrategy", "EverywhereStrategy", "MetaStrategy"):
            continue
        if strategy == "SimpleStrategy":
            rf = replication_factor(replication.get("replication_factor", 1))
            at_default = name in SYSTEM_DEFAULT_RF and rf <= SYSTEM_DEFAULT_RF[name]
            if at_default == defaults:
                needs.append({"keyspace": name, "strategy": strategy, "dc": None, "rf": rf})
            continue
        if defaults:
            continue
        if strategy == "NetworkTopologyStrategy":
            for key, value in sorted(replication.items()):
                if key in ("class", "replication_factor"):
                    continue
                needs.append({"keyspace": name, "strategy": strategy, "dc": key, "rf": replication_factor(value)})
        else:
            # An unknown strategy: only its replication_factor, if it has one, is understood.
            if "replication_factor" in replication:
                needs.append({"keyspace": name, "strategy": strategy, "dc": None,
                              "rf": replication_factor(replication["replication_factor"])})
    return needs


def view_problems(pod: str, nodes: list[Obj], pod_ips: dict[str, str | None]) -> list[str]:
    """Why the ring as ``pod`` sees it is not whole: a node not ``UN``, or a pod of the StatefulSet not in it.

    ``nodes``: ``_health.parse_nodetool_status``; ``pod_ips``: every pod of the StatefulSet and its address.
    """
    by_ip = {ip: name for name, ip in pod_ips.items() if ip}
    problems = []
    if not nodes:
        return ["%s: nodetool status listed no node" % pod]
    seen = set()
    for node in nodes:
        owner = by_ip.get(node["address"])
        seen.add(node["address"])
        if node["code"] != "UN":
            problems.append("%s sees %s (%s) %s" % (pod, node["address"], owner or "no pod", node["code"]))
    for name, ip in sorted(pod_ips.items()):
        if ip and ip not in seen:
            problems.append("%s sees no node at %s (%s)" % (pod, ip, name))
    return problems


def gate_description(drain: bool) -> list[str]:
    gates = ["pod Ready on the new revision",
             "every node UN (up, normal: none joining, leaving or moving) in nodetool status as each pod sees "
             "the ring, every pod's address among them"]
    if drain:
        gates.insert(0, "before each pod: nodetool drain in it (memtables flushed, clients and gossip stopped); "
                        "by its preStop hook as it stops when the hook runs nodetool drain, else by this run "
                        "before the delete")
    return gates


def prestop_drains(pod: Obj, container: str | None) -> bool:
    """Whether ``pod``'s Cassandra container drains the node itself as it stops (a ``preStop`` hook that runs
    ``nodetool drain``, as the cassandra role's does): the kubelet runs it before the container is told to stop."""
    containers = (pod.get("spec") or {}).get("containers") or []
    chosen = [c for c in containers if c.get("name") == container] if container else containers[:1]
    for spec in chosen:
        command = (((spec.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
        words = " ".join(str(part) for part in command).split()
        if "nodetool" in words and "drain" in words:
            return True
    return False


def _leaving(name: str, sts_name: str, target: int) -> bool:
    match = re.match(r"^%s-(\d+)$" % re.escape(sts_name), name)
    return bool(match) and int(match.group(1)) >= target  # type: ignore[union-attr]


def scale_down_check(sts_name: str, target: int, nodes: list[Obj], pod_ips: dict[str, str | None],
                     keyspaces: list[Obj], free_bytes: dict[str, int | None]) -> Obj:
    """What a Cassandra scale-down to ``target`` pods does; raises ``InvalidInput`` (``replicas``) if unsafe.

    ``nodes``: ``nodetool status`` as a pod that stays sees the ring; ``pod_ips``: the StatefulSet's pods
    and their addresses; ``keyspaces``: ``system_schema.keyspaces`` rows (``KEYSPACES_CQL``);
    ``free_bytes``: the free bytes of each staying pod's data volume (``None``: not known).

    A leaving node that is ``UN`` is to be decommissioned; ``UL`` is being decommissioned (an earlier,
    interrupted run: it is waited for); one no longer in the ring is done.
    """
    if target == 0:
        raise InvalidInput("replicas", "0 would decommission every Cassandra node (the ring and its data would be "
                           "gone); remove the ring with the cassandra role's state=absent")
    by_ip = {ip: name for name, ip in pod_ips.items() if ip}
    problems: list[str] = []
    leaving: list[Obj] = []
    staying: list[Obj] = []
    for node in nodes:
        pod = by_ip.get(node["address"])
        code = node["code"]
        if pod is not None and _leaving(pod, sts_name, target):
            entry = {"pod": pod, "address": node["address"], "host_id": node.get("host_id"), "code": code,
                     "load_bytes": node.get("load_bytes"), "datacenter": node.get("datacenter")}
            if code in ("UN", "UL"):
                leaving.append(entry)
            else:
                problems.append("%s (%s) is %s, not up and normal: a node must be up to decommission itself; start "
                                "it, or remove it with nodetool removenode %s" % (pod, node["address"], code,
                                                                                  node.get("host_id")))
            continue
        staying.append(dict(node, pod=pod))
        if code != "UN":
            owner = pod or "no pod of %s" % sts_name
            problems.append("%s (%s) is %s, not up and normal" % (node["address"], owner, code))
    in_ring = {n["address"] for n in nodes}
    for pod, ip in sorted(pod_ips.items()):
        if not _leaving(pod, sts_name, target) and ip not in in_ring:
            problems.append("%s (%s) is not in the ring" % (pod, ip))
    if problems:
        raise InvalidInput("replicas", "%d: the ring is not healthy: %s; nothing was changed" % (
            target, "; ".join(problems)))

    per_dc: dict[str, int] = {}
    for node in staying:
        per_dc[str(node.get("datacenter"))] = per_dc.get(str(node.get("datacenter")), 0) + 1
    for need in keyspace_needs(keyspaces):
        have = len(staying) if need["dc"] is None else per_dc.get(need["dc"], 0)
        if need["rf"] > have:
            where = "" if need["dc"] is None else " in data center %s" % need["dc"]
            problems.append("keyspace %s has replication factor %d%s (%s), more than the %d node(s) that stay%s"
                            % (need["keyspace"], need["rf"], where, need["strategy"], have, where))
    if problems:
        raise InvalidInput("replicas", "%d would leave too few nodes: %s; lower those keyspaces' replication "
                           "(ALTER KEYSPACE) first; nothing was changed" % (target, "; ".join(problems)))

    # Cassandra's own decommission refuses when any keyspace, these too, has more replicas than nodes would
    # stay; it is told to go on (--force) only for the system keyspaces at their defaults, checked above.
    force = sorted({need["keyspace"] for need in keyspace_needs(keyspaces, defaults=True)
                    if need["rf"] > len(staying)})
    moving = sum(int(n["load_bytes"] or 0) for n in leaving)
    unknown = [n["pod"] for n in leaving if n["load_bytes"] is None]
    if unknown:
        raise InvalidInput("replicas", "the load of %s is not known (nodetool status prints ?); nothing was changed"
                           % ", ".join(unknown))
    staying_pods = sorted((n["pod"] for n in staying if n["pod"]), key=_ordinal)
    share = int(math.ceil(float(moving) / len(staying_pods))) if staying_pods and moving else 0
    for pod in staying_pods:
        free = free_bytes.get(pod)
        if free is None:
            problems.append("%s: the free space of its data volume is not known" % pod)
        elif free < share:
            problems.append("%s has %d bytes free, less than its share (%d bytes) of the %d bytes the leaving "
                            "node(s) hold" % (pod, free, share, moving))
    if problems:
        raise InvalidInput("replicas", "%d: the nodes that stay cannot hold the data: %s; nothing was changed"
                           % (target, "; ".join(problems)))
    leaving.sort(key=lambda n: _ordinal(n["pod"]), reverse=True)
    return {"leaving": leaving, "staying": staying_pods, "load_moving_bytes": moving, "share_bytes": share,
            "free_bytes": {p: free_bytes.get(p) for p in staying_pods}, "force_for": force}


def with_own_loads(nodes: list[Obj], own_views: dict[str, list[Obj]], pod_ips: dict[str, str | None]) -> list[Obj]:
    """``nodes`` (a peer's ``nodetool status``) with each node's load as the node itself reports it, when that
    is higher: a peer hears of a node's load through gossip, about once a minute, so right after writes its
    figure is low. ``own_views``: ``nodetool status`` as some pods see the ring."""
    own_load = {}
    for pod, view in own_views.items():
        for entry in view:
            if entry.get("address") == pod_ips.get(pod) and entry.get("load_bytes") is not None:
                own_load[entry["address"]] = int(entry["load_bytes"])
    merged = []
    for node in nodes:
        mine = own_load.get(node.get("address"))
        if mine is not None and (node.get("load_bytes") is None or mine > int(node["load_bytes"])):
            node = dict(node, load_bytes=mine)
        merged.append(node)
    return merged


def decommission_command(info: Obj) -> list[str]:
    """``nodetool decommission``, with ``--force`` when only system keyspaces at their defaults would block it."""
    return ["nodetool", "decommission"] + (["--force"] if info.get("force_for") else [])


def _ordinal(pod: str) -> int:
    tail = pod.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def still_in_ring(nodes: list[Obj], node: Obj) -> Obj | None:
    """The entry of a leaving node (by host id, else by address) in a peer's ``nodetool status``; ``None``: gone."""
    for entry in nodes:
        if node.get("host_id") and entry.get("host_id") == node["host_id"]:
            return entry
        if not node.get("host_id") and entry.get("address") == node.get("address"):
            return entry
    return None


# Gossip states Cassandra itself lets expire: an endpoint in one of them holds no tokens and comes back
# in no ring.
DEAD_STATES = ("LEFT", "removed", "removing", "hibernate")
GOSSIPINFO_COMMAND = ["nodetool", "gossipinfo"]
_ENDPOINT = re.compile(r"^[\w.-]*/([0-9A-Fa-f.:\[\]]+)$")


def parse_gossipinfo(text: str | None) -> dict[str, Obj]:
    """``nodetool gossipinfo``: ``{address: {"address", "generation", "heartbeat", "status", "host_id"}}``.

    An endpoint line is ``[hostname]/address[:port]``; its states follow, indented, as
    ``NAME:version:value`` (``generation`` and ``heartbeat`` as ``name:value``).
    """
    entries: dict[str, Obj] = {}
    with_port: set[str] = set()  # addresses whose status came from STATUS_WITH_PORT, which STATUS must not undo
    current: Obj | None = None
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            match = _ENDPOINT.match(line.strip())
            if not match:
                current = None
                continue
            address = match.group(1)
            if address.count(":") == 1:  # an IPv4 address with its port
                address = address.split(":", 1)[0]
            elif address.startswith("[") and "]" in address:  # [IPv6]:port
                address = address[1:address.index("]")]
            current = entries.setdefault(address, {"address": address, "status": None, "host_id": None})
            continue
        if current is None:
            continue
        key, rest = (line.strip().split(":", 1) + [""])[:2]
        if key in ("generation", "heartbeat"):
            current[key] = int(rest) if rest.strip().isdigit() else None
            continue
        value = rest.partition(":")[2]
        if key == "HOST_ID":
            current["host_id"] = value.strip() or None
        elif key == "STATUS_WITH_PORT" or (key == "STATUS" and current["address"] not in with_port):
            current["status"] = value.split(",", 1)[0].strip() or None
            if key == "STATUS_WITH_PORT":
                with_port.add(current["address"])
    if not entries:
        raise ValueError("nodetool gossipinfo listed no endpoint: %s" % (text or "").strip()[:200])
    return entries


def stale_endpoints(gossip: dict[str, Obj], nodes: list[Obj], pod_ips: dict[str, str | None],
                    gone_host_ids: Iterable[str] = ()) -> list[Obj]:
    """Endpoints a node still gossips about that no node is: safe to clear with ``nodetool assassinate``.

    A pod that restarts on Kubernetes usually comes back at a new address with the same host id; its
    peers hand the tokens to the new address, but the old address's last state (``NORMAL`` or
    ``shutdown``) can stay in gossip. Such a state is harmless while its host id is at the new address;
    once that node has left (decommissioned), nothing contests it and the old address comes back in the
    ring as a ``DN`` node that holds the tokens. An endpoint is stale when its address is no pod's, its
    state is not one Cassandra expires on its own, and its host id is either a node that is up at a
    pod's address (``nodes``: ``nodetool status``) or one that has left (``gone_host_ids``).
    """
    addresses = {ip for ip in pod_ips.values() if ip}
    by_ip = {ip: name for name, ip in pod_ips.items() if ip}
    live = {n["host_id"]: n["address"] for n in nodes
            if n.get("host_id") and n.get("address") in addresses and n.get("code") == "UN"}
    gone = set(gone_host_ids)
    stale = []
    for address, entry in sorted(gossip.items()):
        host_id, status = entry.get("host_id"), entry.get("status")
        if address in addresses or not host_id or status in DEAD_STATES:
            continue
        if host_id in live and live[host_id] != address:
            stale.append({"address": address, "host_id": host_id, "status": status,
                          "reason": "host id now at %s (%s)" % (live[host_id], by_ip.get(live[host_id]))})
        elif host_id in gone:
            stale.append({"address": address, "host_id": host_id, "status": status,
                          "reason": "host id of a node that left the ring"})
    return stale


def assassinate_command(address: str) -> list[str]:
    return ["nodetool", "assassinate", address]
