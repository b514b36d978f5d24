# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A datastore's own view of its health, asked inside its pods (``info``'s ``health`` option).

Each datastore has a ``*_commands`` part (what to run, through ``_exec``) and pure parsing
and reporting functions (what the output means), so the parsing is tested on recorded
output without a cluster. Commands authenticate the way the container itself can
(PostgreSQL's local socket, Elasticsearch's ``ELASTIC_PASSWORD`` read inside the pod): no
credential passes through the module, and none is printed.
"""

from __future__ import annotations

__metaclass__ = type

import json
import re
from typing import TYPE_CHECKING, Any, Iterable, cast

from ansible_collections.datastore.kubernetes.plugins.module_utils import _exec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import ExecError, KubeApiError
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj

if TYPE_CHECKING:
    from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient  # pragma: no cover

DATASTORES = ("none", "postgres", "cassandra", "elasticsearch")
# Unassigned Elasticsearch shards explained, at most (each explanation is one more command).
MAX_EXPLAINED = 5

# -- PostgreSQL ----------------------------------------------------------------------
# One row of JSON per pod: its role, position and timeline, and (on a primary) who streams from it.
POSTGRES_SQL = """
SELECT json_build_object(
  'in_recovery', pg_is_in_recovery(),
  'server_version', current_setting('server_version'),
  'checkpoint_timeline', (SELECT timeline_id FROM pg_control_checkpoint()),
  'wal_timeline', CASE WHEN pg_is_in_recovery() THEN NULL
                  ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
  'wal_lsn', CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
  'receiver', (SELECT row_to_json(r) FROM (
      SELECT status, received_tli, sender_host, sender_port, slot_name FROM pg_stat_wal_receiver) r),
  'replication', COALESCE((SELECT json_agg(r ORDER BY r.application_name) FROM (
      SELECT application_name, host(client_addr) AS client_addr, state, sync_state,
             sent_lsn, replay_lsn,
             pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                  ELSE pg_current_wal_lsn() END, replay_lsn) AS lag_bytes,
             EXTRACT(epoch FROM write_lag) AS write_lag_seconds,
             EXTRACT(epoch FROM flush_lag) AS flush_lag_seconds,
             EXTRACT(epoch FROM replay_lag) AS replay_lag_seconds
      FROM pg_stat_replication) r), '[]'::json))
"""
# The image's own client on the local socket, as the database superuser the container was made with
# (PGUSER, which the postgres role sets; else the image's POSTGRES_USER; else postgres).
POSTGRES_COMMAND = ["sh", "-c", 'exec psql -X -A -t -q -v ON_ERROR_STOP=1 -U "${PGUSER:-${POSTGRES_USER:-postgres}}" '
                                '-d postgres -c "$1"', "health", POSTGRES_SQL]


def parse_postgres(text: str | None) -> Obj:
    """The JSON object the PostgreSQL query printed (the last non-empty line of ``text``)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise ValueError("psql printed nothing")
    # json_agg puts each replica's row on a line of its own: with two replicas or more the object
    # spans lines. Read from the line that starts it.
    starts = [n for n, line in enumerate(lines) if line.startswith("{")]
    data = json.loads("\n".join(lines[starts[-1] if starts else -1:]))
    if not isinstance(data, dict) or "in_recovery" not in data:
        raise ValueError("psql printed no health row")
    return data


def _number(value: Any) -> int | float | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number == int(number) else number


def postgres_report(observed: list[Obj]) -> Obj:
    """The PostgreSQL health report from what each pod answered.

    ``observed``: a list of ``{"pod", "ip", "data"}`` (``data`` from ``parse_postgres``) or
    ``{"pod", "ip", "error"}``. Replication rows of the primary are matched to pods by address.
    """
    by_ip = {o.get("ip"): o["pod"] for o in observed if o.get("ip")}
    pods: list[Obj] = []
    replication: list[Obj] = []
    problems: list[str] = []
    primaries: list[str] = []
    for entry in observed:
        data = entry.get("data")
        if data is None:
            pods.append({"pod": entry["pod"], "role": "unknown", "timeline": None, "wal_lsn": None,
                         "server_version": None, "error": entry.get("error")})
            problems.append("%s: %s" % (entry["pod"], entry.get("error")))
            continue
        receiver = data.get("receiver") or {}
        role = "replica" if data.get("in_recovery") else "primary"
        # The primary's current WAL file names its timeline (its last checkpoint may predate a
        # promotion); a replica's WAL receiver knows the timeline it follows.
        timeline = data.get("wal_timeline") or receiver.get("received_tli") or data.get("checkpoint_timeline")
        pods.append({"pod": entry["pod"], "role": role, "timeline": timeline, "wal_lsn": data.get("wal_lsn"),
                     "server_version": data.get("server_version"), "error": None,
                     "receiver_status": receiver.get("status") if receiver else None})
        if role == "primary":
            primaries.append(entry["pod"])
            for row in data.get("replication") or []:
                replication.append({
                    "pod": by_ip.get(row.get("client_addr")),
                    "from": entry["pod"],
                    "application_name": row.get("application_name"),
                    "client_addr": row.get("client_addr"),
                    "state": row.get("state"),
                    "sync_state": row.get("sync_state"),
                    "sent_lsn": row.get("sent_lsn"),
                    "replay_lsn": row.get("replay_lsn"),
                    "lag_bytes": _number(row.get("lag_bytes")),
                    "write_lag_seconds": _number(row.get("write_lag_seconds")),
                    "flush_lag_seconds": _number(row.get("flush_lag_seconds")),
                    "replay_lag_seconds": _number(row.get("replay_lag_seconds")),
                })
    if len(primaries) != 1:
        problems.append("%d primaries%s" % (len(primaries), ": " + ", ".join(primaries) if primaries else ""))
    streaming = {r["pod"] for r in replication if r["state"] == "streaming"}
    for pod in pods:
        if pod["role"] == "replica":
            pod["streaming"] = pod["pod"] in streaming
            if not pod["streaming"]:
                problems.append("%s: replica not streaming from the primary" % pod["pod"])
        else:
            pod["streaming"] = None
    return {"datastore": "postgres", "healthy": not problems, "problems": problems,
            "primary": primaries[0] if len(primaries) == 1 else None, "pods": pods, "replication": replication}


# -- Cassandra -----------------------------------------------------------------------
CASSANDRA_COMMAND = ["nodetool", "status"]
_STATUS = {"U": "up", "D": "down"}
_STATE = {"N": "normal", "L": "leaving", "J": "joining", "M": "moving"}
_NODE = re.compile(
    r"^(?P<code>[UD][NLJM])\s+(?P<address>\S+)\s+(?P<load>\?|[\d.,]+\s*[KMGTP]?i?B|[\d.,]+)\s+"
    r"(?:(?P<tokens>\d+)\s+)?(?P<owns>\?|[\d.,]+\s*%)\s+(?P<host_id>[0-9a-fA-F-]{36}|\?)\s+(?P<rack>.*?)\s*$")
_UNITS = {"": 1, "B": 1, "KB": 1024, "KIB": 1024, "MB": 1024 ** 2, "MIB": 1024 ** 2, "GB": 1024 ** 3,
          "GIB": 1024 ** 3, "TB": 1024 ** 4, "TIB": 1024 ** 4, "PB": 1024 ** 5, "PIB": 1024 ** 5}


def _bytes(load: str | None) -> int | None:
    match = re.match(r"^([\d.,]+)\s*([KMGTP]?i?B)?$", load or "", re.I)
    if not match:
        return None
    number = match.group(1)
    # A locale with a decimal comma prints "29,16 KB".
    number = number.replace(",", ".") if "." not in number else number.replace(",", "")
    return int(float(number) * _UNITS[(match.group(2) or "").upper()])


def parse_nodetool_status(text: str | None) -> list[Obj]:
    """Nodes of ``nodetool status`` output, each with its datacenter."""
    nodes: list[Obj] = []
    datacenter: str | None = None
    for line in (text or "").splitlines():
        if line.startswith("Datacenter:"):
            datacenter = line.split(":", 1)[1].strip()
            continue
        match = _NODE.match(line.strip())
        if not match:
            continue
        code = match.group("code")
        owns = match.group("owns")
        nodes.append({
            "address": match.group("address"),
            "code": code,
            "status": _STATUS[code[0]],
            "state": _STATE[code[1]],
            "load": None if match.group("load") == "?" else match.group("load"),
            "load_bytes": _bytes(match.group("load")),
            "tokens": int(match.group("tokens")) if match.group("tokens") else None,
            "owns_percent": None if owns == "?" else float(owns.rstrip("% ").replace(",", ".")),
            "host_id": None if match.group("host_id") == "?" else match.group("host_id"),
            "rack": match.group("rack"),
            "datacenter": datacenter,
        })
    return nodes


def cassandra_report(nodes: list[Obj], pod_ips: dict[str, str | None], source: str | None = None,
                     errors: Iterable[str] | None = None) -> Obj:
    """The Cassandra health report: every node up and normal, one per pod."""
    by_ip = {ip: pod for pod, ip in pod_ips.items() if ip}
    problems = list(errors or [])
    for node in nodes:
        node["pod"] = by_ip.get(node["address"])
        if node["code"] != "UN":
            problems.append("%s (%s): %s" % (node["address"], node["pod"] or "no pod", node["code"]))
    if nodes:
        seen = {node["pod"] for node in nodes}
        problems.extend("%s: not in the ring" % pod for pod in sorted(pod_ips) if pod not in seen)
    elif not problems:
        problems.append("nodetool status listed no node")
    return {"datastore": "cassandra", "healthy": not problems, "problems": problems, "source_pod": source,
            "nodes": nodes}


# -- Elasticsearch -------------------------------------------------------------------
# curl inside the pod, on the node's own HTTP port; a password, if the container has one, goes to
# curl on its standard input, never on a command line. An image without curl (such as a minimal
# test image) is asked over bash's /dev/tcp, without TLS or authentication.
_ES_BASH = r"""
base="${ES_HEALTH_URL:-http://localhost:9200}"
es() {
  local method=$1 path=$2 body=${3:-} status line
  if command -v curl >/dev/null 2>&1; then
    local args=(-sS -k -f -X "$method")
    if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
    if [ -n "${ELASTIC_PASSWORD:-}" ]; then
      printf 'user = "elastic:%s"\n' "$ELASTIC_PASSWORD" | curl "${args[@]}" -K - "$base$path"
    else
      curl "${args[@]}" "$base$path"
    fi
    return
  fi
  case "$base" in
    http://localhost:9200|http://127.0.0.1:9200) ;;
    *) echo "no curl in the container to reach $base" >&2; return 2 ;;
  esac
  exec 3<>/dev/tcp/127.0.0.1/9200 || return 2
  printf '%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$path" "${#body}" "$body" >&3
  IFS=' ' read -r _ status _ <&3
  local chunked=
  while IFS= read -r line <&3 && [ -n "${line%$'\r'}" ]; do
    case "${line,,}" in transfer-encoding:*chunked*) chunked=1 ;; esac
  done
  if [ -n "$chunked" ]; then
    # Elasticsearch answers even HTTP/1.0 in chunks: <hex size>CRLF<data>CRLF ... 0CRLF
    local size
    while IFS= read -r line <&3; do
      size=$((16#${line%%[;$'\r']*}))
      [ "$size" -gt 0 ] || break
      head -c "$size" <&3
      IFS= read -r line <&3
    done
  else
    cat <&3
  fi
  exec 3<&-
  case "$status" in 2*) ;; *) echo "HTTP $status from $path" >&2; return 22 ;; esac
}
"""
ES_HEALTH_COMMAND = ["bash", "-c", _ES_BASH + r"""
es GET /_cluster/health && printf '\n' &&
es GET '/_cat/shards?format=json&h=index,shard,prirep,state,unassigned.reason&s=index,shard'
""", "health"]


def es_command(method: str, path: str, body: Obj | None = None) -> list[str]:
    """One request to the node's HTTP API from inside its pod; the JSON ``body`` goes as an argument."""
    return ["bash", "-c", _ES_BASH + 'es "$1" "$2" "$3"\n', "es", method, path,
            json.dumps(body) if body is not None else ""]


class EsRequestFailed(ExecError):
    """A request to the HTTP API that ran and failed: ``reason`` is what Elasticsearch (or curl) said,
    ``missing`` that the answer was 404."""

    def __init__(self, msg: str, reason: str, missing: bool, **details: Any) -> None:
        super().__init__(msg, **details)
        self.reason, self.missing = reason, missing


def es_call(client: KubeClient, namespace: str, pod: str, container: str | None, method: str, path: str,
            body: Obj | None = None, timeout: float = 60.0) -> Any:
    """One request to a pod's HTTP API through ``pods/exec``: the answer, parsed when it is JSON.

    Raises ``EsRequestFailed`` when the request ran and failed (its ``reason``: Elasticsearch's
    ``error.root_cause``, else curl's message), ``ExecError`` when it could not run or the answer is not JSON.
    """
    result = _exec.run(client, namespace, pod, es_command(method, path, body), container=container, timeout=timeout)
    text = result.stdout_text.strip()
    where = "pod %s/%s: %s %s" % (namespace, pod, method, path.split("?")[0])
    if result.rc != 0:
        said = result.stderr_text.strip()
        reason = es_error_summary(text, said)
        raise EsRequestFailed("%s failed (%d): %s" % (where, result.rc, reason), reason,
                              result.rc == 22 and bool(re.search(r"\b404\b", said)), pod=pod)
    try:
        return json.loads(text) if text else None
    except ValueError:
        raise ExecError("%s: not JSON: %s" % (where, text[:200]), pod=pod)


def es_error_summary(body: str, stderr: str) -> str:
    """The reason Elasticsearch gave (its ``error.root_cause``), else what the client said."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        causes = error.get("root_cause") or [error]
        return "; ".join("%s: %s" % (c.get("type"), c.get("reason")) for c in causes if isinstance(c, dict))[:500]
    if isinstance(error, str):
        return error[:500]
    return (stderr or body)[:500]


def es_explain_command(index: str, shard: int | str, primary: bool) -> list[str]:
    body = json.dumps({"index": index, "shard": int(shard), "primary": bool(primary)})
    return ["bash", "-c", _ES_BASH + 'es POST /_cluster/allocation/explain "$1"\n', "health", body]


def parse_es_health(text: str | None) -> tuple[Obj, list[Obj]]:
    """``(health, shards)`` from the health command: the health object, then the shard list."""
    text = (text or "").strip()
    if not text:
        raise ValueError("curl printed nothing")
    decoder = json.JSONDecoder()
    health, end = decoder.raw_decode(text)
    rest = text[end:].strip()
    shards = decoder.raw_decode(rest)[0] if rest else []
    if not isinstance(health, dict) or "cluster_name" not in health or "status" not in health:
        raise ValueError("no cluster health in the answer: %s" % text[:200])
    return health, shards if isinstance(shards, list) else []


def unassigned_shards(shards: list[Obj]) -> list[Obj]:
    return [s for s in shards if s.get("state") == "UNASSIGNED"]


def explanation_summary(answer: Obj) -> Obj:
    """The useful part of ``_cluster/allocation/explain``: why, and what each node's deciders say."""
    info = answer.get("unassigned_info") or {}
    nodes = []
    for node in answer.get("node_allocation_decisions") or []:
        nodes.append({
            "node": node.get("node_name"),
            "decision": node.get("node_decision"),
            "deciders": ["%s: %s" % (d.get("decider"), d.get("explanation"))
                         for d in node.get("deciders") or [] if d.get("decision") == "NO"],
        })
    return {"can_allocate": answer.get("can_allocate"),
            "explanation": answer.get("allocate_explanation"),
            "unassigned_reason": info.get("reason"),
            "unassigned_details": info.get("details"),
            "nodes": nodes}


def es_report(health: Obj, shards: list[Obj], explanations: dict[tuple[Any, int, bool], Obj],
              source: str | None = None, errors: Iterable[str] | None = None) -> Obj:
    """The Elasticsearch health report; ``explanations`` maps ``(index, shard, primary)`` to an answer."""
    unassigned: list[Obj] = []
    for shard in unassigned_shards(shards):
        primary = shard.get("prirep") == "p"
        entry: Obj = {"index": shard.get("index"), "shard": int(cast(Any, shard.get("shard"))),
                      "primary": primary, "reason": shard.get("unassigned.reason")}
        answer = explanations.get((entry["index"], entry["shard"], primary))
        entry["explanation"] = explanation_summary(answer) if answer else None
        unassigned.append(entry)
    problems = list(errors or [])
    if health:
        if health.get("status") != "green":
            problems.append("cluster status %s" % health.get("status"))
        for key in ("relocating_shards", "initializing_shards", "unassigned_shards"):
            if health.get(key):
                problems.append("%s: %s" % (key, health[key]))
    return {"datastore": "elasticsearch", "healthy": bool(health) and not problems, "problems": problems,
            "source_pod": source, "status": (health or {}).get("status"), "cluster": health or {},
            "unassigned": unassigned}


# -- collection through the API server ---------------------------------------------------
def _exec_text(client: KubeClient, namespace: str, pod: str, container: str | None, command: list[str],
               timeout: float) -> str:
    result = _exec.run(client, namespace, pod, command, container=container, timeout=timeout)
    if result.rc != 0:
        detail = (result.stderr_text.strip() or result.stdout_text.strip())[:300]
        raise ExecError("%s exited with %d: %s" % (command[0], result.rc, detail), pod=pod, container=container)
    return result.stdout_text


def _running(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"
            and not (p.get("metadata") or {}).get("deletionTimestamp")]


def _pod_ip(pod: Obj) -> str | None:
    return (pod.get("status") or {}).get("podIP")


def _ordinal_key(pod: Obj) -> tuple[int, str]:
    name = pod["metadata"]["name"]
    tail = name.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, name)


def collect(client: KubeClient, datastore: str | None, namespace: str, pods: Iterable[Obj],
            container: str | None = None, timeout: float = 60.0) -> Obj | None:
    """Ask the datastore in ``pods`` (Pod objects) how it is; ``None`` when ``datastore`` is none."""
    if not datastore or datastore == "none":
        return None
    pods = sorted(pods, key=_ordinal_key)
    running = _running(pods)
    not_running = ["%s: pod not running" % p["metadata"]["name"] for p in pods if p not in running]
    if datastore == "postgres":
        observed: list[Obj] = []
        for pod in running:
            name = pod["metadata"]["name"]
            entry: Obj = {"pod": name, "ip": _pod_ip(pod)}
            try:
                entry["data"] = parse_postgres(_exec_text(client, namespace, name, container, POSTGRES_COMMAND,
                                                          timeout))
            except (ExecError, KubeApiError, ValueError) as exc:
                entry["error"] = getattr(exc, "msg", None) or str(exc)
            observed.append(entry)
        report = postgres_report(observed)
        report["problems"][:0] = not_running
        report["healthy"] = not report["problems"]
        return report
    errors = list(not_running)
    for pod in running:
        name = pod["metadata"]["name"]
        try:
            if datastore == "cassandra":
                nodes = parse_nodetool_status(_exec_text(client, namespace, name, container, CASSANDRA_COMMAND,
                                                         timeout))
                return cassandra_report(nodes, {p["metadata"]["name"]: _pod_ip(p) for p in pods}, name, errors)
            health, shards = parse_es_health(_exec_text(client, namespace, name, container, ES_HEALTH_COMMAND,
                                                        timeout))
            explanations: dict[tuple[Any, int, bool], Obj] = {}
            for shard in unassigned_shards(shards)[:MAX_EXPLAINED]:
                key: tuple[Any, int, bool] = (shard.get("index"), int(cast(Any, shard.get("shard"))),
                                              shard.get("prirep") == "p")
                try:
                    explanations[key] = json.loads(_exec_text(client, namespace, name, container,
                                                              es_explain_command(*key), timeout))
                except (ExecError, ValueError) as exc:
                    reason = getattr(exc, "msg", None) or exc
                    errors.append("%s: explaining %s[%d]: %s" % (name, key[0], key[1], reason))
            return es_report(health, shards, explanations, name, errors)
        except (ExecError, KubeApiError, ValueError) as exc:
            errors.append("%s: %s" % (name, getattr(exc, "msg", None) or exc))
    if datastore == "cassandra":
        return cassandra_report([], {}, None, errors or ["no running pod to ask"])
    return es_report({}, [], {}, None, errors or ["no running pod to ask"])
