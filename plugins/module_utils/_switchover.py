# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A planned PostgreSQL switchover on the postgres role's StatefulSet: the work of ``switchover``.

The primary is the pod the ConfigMap ``<name>-primary`` names (key ``primary``); the role's
start-up script reads it (through the container's environment) each time a container starts, and
the role reads it before it applies the primary's Service and the StatefulSet. A switchover:

1. gate: the target is a hot standby streaming from the primary, its lag under the bound;
2. the record names the target, then the primary's Service selects it (from here on, a container
   that starts follows the target, and no new client reaches the old primary);
3. the old primary stops (fast: clients disconnected, a shutdown checkpoint streamed to the standbys);
4. the target has received and replayed the old primary's last WAL; it is promoted;
5. a slot per other member on the new primary; the old primary's container starts again as a standby
   of the new primary (on the new timeline, without rewind: its last record is the shutdown
   checkpoint the target replayed), each other replica is restarted to follow it;
6. the replication slots left on the old primary (now a standby) are dropped.

Each step looks at the cluster first (the record, the Service, which members answer as primaries,
who streams from whom), so a run stopped anywhere is finished by the next run with the same ``to``.
``plan`` is pure and unit tested; ``run_switchover`` reads, asks the pods (``pods/exec``) and writes.
"""

from __future__ import annotations

__metaclass__ = type

import re
import time
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2, _exec
from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as dplan
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    DatastoreError,
    ExecError,
    InvalidInput,
    KubeApiError,
    WaitTimeout,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import check_dns_label
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

RECORD_KEY = "primary"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
INTERVAL = 0.5
# The server stops; its container starts again and follows the primary the record names.
_PROGRAMS = 'for d in /usr/lib/postgresql/*/bin; do PATH=$PATH:$d; done; '
_STOP = _PROGRAMS + 'exec pg_ctl stop --pgdata="$PGDATA" --mode=fast --no-wait'
# The postgres role's mark: the next start of the pod clones the primary anew (its data removed).
_MARK_RECLONE = 'exec touch "$(dirname "$PGDATA")/.datastore-reclone"'
# The stopped server's control file: its state and its last (the shutdown) checkpoint.
_CONTROLDATA = _PROGRAMS + 'LC_ALL=C exec pg_controldata "$PGDATA"'


class SwitchoverError(DatastoreError):
    """The switchover cannot go on; the message says where it stopped and what the next run does."""


# -- pure --------------------------------------------------------------------------------------
def parse_controldata(text: str) -> tuple[str | None, str | None]:
    """``(cluster state, latest checkpoint location)`` from ``pg_controldata``'s output."""
    found = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    state = found.get("Database cluster state")
    lsn = found.get("Latest checkpoint location")
    return (state.strip() if state else None), (lsn.strip() if lsn else None)


def final_checkpoint(text: str) -> str | None:
    """The old primary's shutdown checkpoint, once its server has stopped (else ``None``)."""
    state, lsn = parse_controldata(text)
    # "in production" is a primary still running; a clean stop says "shut down", and the container that
    # starts again as a standby "in archive recovery" with the same checkpoint.
    if state in ("shut down", "shut down in recovery", "in archive recovery") and lsn and "/" in lsn:
        return lsn
    return None


def lsn_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def record_name(name: str) -> str:
    return "%s-primary" % name


def validate(params: Params) -> None:
    check_dns_label("name", params.get("name"))
    check_dns_label("namespace", params.get("namespace"))
    if params.get("container") is not None:
        check_dns_label("container", params["container"])
    if params.get("service") is not None:
        check_dns_label("service", params["service"])
    to = params.get("to")
    if to is not None and not re.match(r"^%s-(0|[1-9][0-9]*)$" % re.escape(str(params.get("name"))), str(to)):
        raise InvalidInput("to", "%r is not a pod of the StatefulSet %s (<name>-<ordinal>)" % (to, params.get("name")))
    if params["max_lag_bytes"] < 0:
        raise InvalidInput("max_lag_bytes", "must be 0 or more")
    if params["timeout"] <= 0:
        raise InvalidInput("timeout", "must be more than 0 seconds")


def record_manifest(name: str, namespace: str, primary: str, labels: dict[str, str] | None) -> Obj:
    meta: Obj = {"name": record_name(name), "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {RECORD_KEY: primary}}


def recorded(config_map: Obj | None) -> str | None:
    return ((config_map or {}).get("data") or {}).get(RECORD_KEY)


def service_pod(service: Obj | None) -> str | None:
    return (((service or {}).get("spec") or {}).get("selector") or {}).get(POD_NAME_LABEL)


def streaming_from(state: Obj | None, ips: dict[str, str | None]) -> list[str]:
    """The members (by pod address) ``state`` (a primary's health row) lists as streaming."""
    by_ip = {ip: pod for pod, ip in ips.items() if ip}
    return sorted((by_ip[row["client_addr"]] for row in (state or {}).get("replication") or []
                   if row.get("state") == "streaming" and row.get("client_addr") in by_ip), key=dplan.ordinal)


def plan(members: list[str], to: str, record: str | None, service: str | None, states: dict[str, Obj | None],
         ips: dict[str, str | None], service_exists: bool = True) -> Obj:
    """What a switchover to ``to`` still has to do, from what the cluster says now.

    ``members``: the StatefulSet's pods; ``record``: the pod the ConfigMap names; ``service``: the pod
    the primary's Service selects; ``states``: each member's health row (``None``: did not answer);
    ``ips``: pod addresses. Raises ``InvalidInput`` or ``SwitchoverError`` when it cannot be done.
    """
    if to not in members:
        raise InvalidInput("to", "%s is not a pod of the StatefulSet (pods: %s)" % (to, ", ".join(members) or "none"))
    primaries = [m for m in members if states.get(m) is not None and not (states[m] or {}).get("in_recovery")]
    others = [m for m in members if m != to]
    old = [m for m in primaries if m != to]
    steps: list[str] = []
    if record != to:
        # Nothing written yet: the switchover starts from a healthy primary, the one on record.
        if len(primaries) != 1:
            raise SwitchoverError("no switchover started: %s answer as primaries (want exactly one); nothing was "
                                  "changed" % (", ".join(primaries) or "no member"))
        if primaries[0] == to:
            raise SwitchoverError("%s answers as the primary but the record names %s: a switchover to %s was "
                                  "interrupted before its record was written? Nothing was changed"
                                  % (to, record, to))
        steps += ["gate", "record"]
    elif to in primaries and old:
        raise SwitchoverError("%s and %s both answer as primaries: the old primary came back as one after %s was "
                              "promoted. Stop it (pg_ctl stop in its container: it starts again as a standby) and run again, with "
                              "reclone: true if its timeline forked off; nothing was changed"
                              % (to, ", ".join(old), to))
    if service_exists and service != to:
        steps.append("service")
    steps += ["stop %s" % m for m in old]
    if to not in primaries:
        steps.append("promote")
    following = streaming_from(states.get(to), ips) if to in primaries else []
    rejoin = [m for m in sorted(others, key=dplan.ordinal, reverse=True) if m not in following]
    # The old primary first: its container starts again by itself once stopped.
    rejoin.sort(key=lambda m: (m not in old, -dplan.ordinal(m)))
    steps += ["slots"] if rejoin or steps else []
    steps += ["follow %s" % m for m in rejoin]
    steps += ["drop stale slots"] if steps else []
    return {"from": old[0] if old else (to if to in primaries else record), "to": to, "record": record,
            "service": service, "primaries": primaries, "steps": steps, "following": following,
            "changed": bool(steps)}


def step_description(step: str, max_lag_bytes: int) -> str:
    fixed = {
        "gate": "the target streams from the primary, replay lag at most %d bytes" % max_lag_bytes,
        "record": "the ConfigMap names the target (pods that start from now on follow it)",
        "service": "the primary's Service selects the target",
        "promote": "the target has replayed the old primary's last WAL (its shutdown checkpoint); pg_promote()",
        "slots": "a replication slot on the new primary for each other member",
        "drop stale slots": "inactive slots on the other members (the old primary's) dropped",
    }
    if step in fixed:
        return fixed[step]
    verb, pod = step.split(" ", 1)
    if verb == "stop":
        return "%s stops (fast shutdown); its container starts again as a standby of the target" % pod
    return "%s streams from the new primary (restarted when it does not yet)" % pod


# -- reading and asking ------------------------------------------------------------------------
class Cluster:
    """The StatefulSet's pods and their PostgreSQL servers, asked through ``pods/exec``."""

    def __init__(self, client: KubeClient, params: Params) -> None:
        self.client = client
        self.params = params
        self.ns = params["namespace"]
        self.engine = _day2.Postgres(client, self.ns, params.get("container"), float(params["request_timeout"]))
        self.sts = _day2.read_statefulset(client, self.ns, params["name"])

    def pods(self) -> list[Obj]:
        return _day2.read_pods(self.client, self.sts)

    def states(self, pods: list[Obj]) -> dict[str, Obj | None]:
        found: dict[str, Obj | None] = {}
        for pod in pods:
            name = dplan.pod_name(pod)
            found[name] = None
            if pod.get("status", {}).get("phase") != "Running" or dplan.is_terminating(pod):
                continue
            try:
                found[name] = self.engine._state(name)  # pylint: disable=protected-access
            except (ExecError, KubeApiError, ValueError):
                pass
        return found

    def state(self, pod: str) -> Obj | None:
        try:
            return self.engine._state(pod)  # pylint: disable=protected-access
        except (ExecError, KubeApiError, ValueError):
            return None

    def sql(self, pod: str, text: str) -> str:
        return self.engine._sql(pod, text)  # pylint: disable=protected-access

    def run(self, pod: str, script: str) -> _exec.ExecResult:
        result = _exec.run(self.client, self.ns, pod, ["sh", "-c", script], container=self.params.get("container"),
                           timeout=float(self.params["request_timeout"]))
        if result.rc != 0:
            detail = result.stderr_text.strip()[:300]
            raise ExecError("pod %s/%s: exited with %d: %s" % (self.ns, pod, result.rc, detail), pod=pod)
        return result

    def until(self, what: str, probe: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = probe()
            except (ExecError, KubeApiError, ValueError):
                value = None
            if value:
                return value
            if time.monotonic() >= deadline:
                raise WaitTimeout("StatefulSet %s/%s: %s did not happen within %ss; run again with the same options "
                                  "to go on" % (self.ns, self.params["name"], what, timeout))
            time.sleep(INTERVAL)


def following_or_forked(cluster: Cluster, to: str, member: str) -> str | None:
    """``"streaming"`` once ``member`` streams from ``to``; ``"forked"`` when it never will: a standby whose
    last checkpoint is on a later timeline than the primary writes (PostgreSQL refuses to follow a primary
    whose timeline is behind its own); else ``None``."""
    primary = cluster.state(to) or {}
    if member in streaming_from(primary, _ips(cluster.pods())):
        return "streaming"
    mine = (cluster.state(member) or {})
    theirs = primary.get("wal_timeline")
    if mine.get("in_recovery") and mine.get("checkpoint_timeline") and theirs and \
            int(mine["checkpoint_timeline"]) > int(theirs):
        return "forked"
    return None


def reclone(cluster: Cluster, to: str, member: str) -> None:
    """Have ``member`` cloned from ``to`` anew: the role's mark in its volume, then its pod deleted.

    The postgres role's clone step (an init container, so it runs when the pod is made again) sees the mark,
    removes the data and copies the primary. Only a standby is marked, and only while ``to`` answers as the
    primary: the data that goes is a timeline the primary does not have.
    """
    if (cluster.state(to) or {}).get("in_recovery") is not False:
        raise SwitchoverError("%s does not answer as the primary: %s is not cloned anew" % (to, member))
    if (cluster.state(member) or {}).get("in_recovery") is not True:
        raise SwitchoverError("%s is not a standby (it answers as a primary, or not at all): it is not cloned anew; "
                              "stop it first" % member)
    cluster.run(member, _MARK_RECLONE)
    current = [p for p in cluster.pods() if dplan.pod_name(p) == member]
    if current:
        cluster.client.delete("v1", "Pod", member, cluster.ns, preconditions={"uid": current[0]["metadata"]["uid"]})


def _ips(pods: list[Obj]) -> dict[str, str | None]:
    return {dplan.pod_name(p): (p.get("status") or {}).get("podIP") for p in pods}


def ensure_record(client: KubeClient, params: Params, check_mode: bool) -> tuple[str, bool]:
    """The recorded primary, the record created (``<name>-0``) when it is missing; ``(primary, created)``."""
    found = client.get("v1", "ConfigMap", record_name(params["name"]), params["namespace"])
    if recorded(found):
        return str(recorded(found)), False
    default = "%s-0" % params["name"]
    if not check_mode:
        manifest = record_manifest(params["name"], params["namespace"], default, params.get("labels"))
        if found is None:
            client.create(manifest)
        else:
            client.patch("v1", "ConfigMap", manifest["metadata"]["name"], params["namespace"], {"data": manifest["data"]})
    return default, True


def write_record(client: KubeClient, params: Params, to: str) -> None:
    name, ns = record_name(params["name"]), params["namespace"]
    if client.get("v1", "ConfigMap", name, ns) is None:
        client.create(record_manifest(params["name"], ns, to, params.get("labels")))
    else:
        client.patch("v1", "ConfigMap", name, ns, {"data": {RECORD_KEY: to}})
    if recorded(client.get("v1", "ConfigMap", name, ns)) != to:
        raise KubeApiError("ConfigMap %s/%s does not name %s after the write" % (ns, name, to))


# -- the run -------------------------------------------------------------------------------------
def run_switchover(task: Task, client: KubeClient) -> Result:
    params = task.params
    validate(params)
    to = params.get("to")
    if to is None:
        primary, created = ensure_record(client, params, task.check_mode)
        result: Result = {"changed": created, "primary": primary, "record": record_name(params["name"])}
        if task.diff:
            result["diff"] = {"before": {"primary": None if created else primary}, "after": {"primary": primary}}
        return result

    ns = params["namespace"]
    service_name = params.get("service") or record_name(params["name"])
    cluster = Cluster(client, params)
    pods = cluster.pods()
    names = [dplan.pod_name(p) for p in pods]
    states = cluster.states(pods)
    record_cm = client.get("v1", "ConfigMap", record_name(params["name"]), ns)
    service = client.get("v1", "Service", service_name, ns)
    steps = plan(names, to, recorded(record_cm) or "%s-0" % params["name"], service_pod(service), states,
                 _ips(pods), service is not None)
    result = {
        "changed": steps["changed"], "primary": to,
        "plan": dict(steps, descriptions=[step_description(s, params["max_lag_bytes"]) for s in steps["steps"]]),
        "done": [], "recloned": [],
    }
    if task.diff:
        result["diff"] = {"before": {"primary": steps["from"], "service": steps["service"]},
                          "after": {"primary": to, "service": to if service is not None else None}}
    if task.check_mode or not steps["changed"]:
        return result

    timeout = float(params["timeout"])
    started = time.monotonic()
    old = [s.split(" ", 1)[1] for s in steps["steps"] if s.startswith("stop ")]

    def done(step: str, **extra: Any) -> None:
        result["done"].append(dict(extra, step=step, seconds=round(time.monotonic() - started, 3)))

    if "gate" in steps["steps"]:
        primary = steps["primaries"][0]
        ips = _ips(pods)

        def gate_passes() -> bool:
            data = cluster.state(primary)
            rows = {r.get("client_addr"): r for r in (data or {}).get("replication") or []}
            row = rows.get(ips.get(to)) or {}
            return bool(row.get("state") == "streaming" and row.get("lag_bytes") is not None
                        and float(row["lag_bytes"]) <= params["max_lag_bytes"])
        try:
            cluster.until("%s streaming from %s with lag <= %d bytes" % (to, primary, params["max_lag_bytes"]),
                          gate_passes, min(timeout, 60.0))
        except WaitTimeout as exc:
            raise SwitchoverError("the gate did not pass, nothing was changed: %s" % exc.msg)
        done("gate")
    if "record" in steps["steps"]:
        write_record(client, params, to)
        done("record")
    if "service" in steps["steps"]:
        client.patch("v1", "Service", service_name, ns, {"spec": {"selector": {POD_NAME_LABEL: to}}})
        done("service")

    final_lsn: dict[str, str] = {}
    for pod in old:
        final_lsn[pod] = cluster.sql(pod, "SELECT pg_current_wal_lsn()")
        cluster.run(pod, _STOP)
        cluster.until("%s stopping as the primary" % pod,
                      lambda p=pod: (cluster.state(p) or {"in_recovery": True}).get("in_recovery"), timeout)
        done("stop %s" % pod, final_lsn=final_lsn[pod])

    if "promote" in steps["steps"]:
        # Every byte the old primary wrote, its shutdown checkpoint last, received and replayed by the target.
        # The walsender ends only once the standby has flushed the shutdown checkpoint, so the target's receiver
        # not streaming after the stop says it is there; else the old primary's control file names it.
        after = max(final_lsn.values(), key=lsn_int) if final_lsn else "0/0"
        fast = ("SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none') <> 'streaming' AND "
                "pg_last_wal_receive_lsn() > '%s'::pg_lsn AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()"
                % after)
        # After an interrupted run the old primary is not known: the latest checkpoint of every other member
        # (each at most the old primary's last) is the bound.
        asked = list(final_lsn) or [m for m in names if m != to]

        def caught_up() -> bool:
            if final_lsn and cluster.sql(to, fast) == "t":
                return True
            found = []
            for member in asked:
                try:
                    found.append(final_checkpoint(cluster.run(member, _CONTROLDATA).stdout_text))
                except (ExecError, KubeApiError):
                    found.append(None)
            lsns = [lsn for lsn in found if lsn]
            if not lsns or (final_lsn and None in found):
                return False
            return cluster.sql(to, "SELECT pg_last_wal_receive_lsn() > '%s'::pg_lsn AND pg_last_wal_replay_lsn() "
                                   ">= pg_last_wal_receive_lsn()" % max(lsns, key=lsn_int)) == "t"

        cluster.until("%s replaying the old primary's last WAL (after %s)" % (to, after), caught_up, timeout)
        replayed = cluster.sql(to, "SELECT pg_last_wal_replay_lsn()")
        cluster.sql(to, "SELECT pg_promote(true, %d)" % int(min(timeout, 300)))
        cluster.until("%s out of recovery" % to,
                      lambda: (cluster.state(to) or {"in_recovery": True}).get("in_recovery") is False, timeout)
        done("promote", replayed_lsn=replayed)

    others = [m for m in names if m != to]
    if "slots" in steps["steps"]:
        for member in others:
            slot = dplan.slot_name(member)
            cluster.sql(to, "SELECT pg_create_physical_replication_slot('%s', true) WHERE NOT EXISTS "
                            "(SELECT FROM pg_replication_slots WHERE slot_name = '%s')" % (slot, slot))
        own = dplan.slot_name(to)
        cluster.sql(to, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        "WHERE slot_name = '%s' AND NOT active" % own)
        done("slots")

    for step in [s for s in steps["steps"] if s.startswith("follow ")]:
        member = step.split(" ", 1)[1]
        pods = cluster.pods()
        if member not in streaming_from(cluster.state(to), _ips(pods)) and member not in old:
            cluster.run(member, _STOP)
        how, why = "streaming", ""
        try:
            how = cluster.until("%s streaming from %s" % (member, to),
                                lambda m=member: following_or_forked(cluster, to, m), timeout)
        except WaitTimeout as exc:
            how, why = "", exc.msg
        if how == "forked":
            why = "its timeline is ahead of the primary's: it forked off (it was promoted on its own)"
        if how != "streaming":
            if not params.get("reclone"):
                raise SwitchoverError("%s is the primary; %s does not stream from it: %s. A member whose timeline "
                                      "forked off before its position needs a new clone: run again with reclone: "
                                      "true" % (to, member, why))
            reclone(cluster, to, member)
            result["recloned"].append(member)
            try:
                cluster.until("%s cloned anew and streaming from %s" % (member, to),
                              lambda m=member: m in streaming_from(cluster.state(to), _ips(cluster.pods())), timeout)
            except WaitTimeout as again:
                raise SwitchoverError("%s is the primary; %s, cloned anew, does not stream from it: %s" % (
                    to, member, again.msg))
        done(step)

    if "drop stale slots" in steps["steps"]:
        dropped = []
        for member in others:
            out = cluster.sql(member, "SELECT string_agg(slot_name, ',') FROM (SELECT slot_name, "
                                      "pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                      "WHERE NOT active AND slot_type = 'physical') d")
            dropped += [s for s in out.split(",") if s]
        done("drop stale slots", slots=dropped)
    final = cluster.state(to) or {}
    result["timeline"] = final.get("wal_timeline")
    return result
