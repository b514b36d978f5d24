# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tagged snapshot on every node of a Cassandra ring, and its removal (the cassandra_snapshot module).

``nodetool snapshot`` talks to the node's JMX port, which the server opens on the loopback address
only: the command runs in each pod, through the API server's ``pods/exec``. Every node is asked in
its own thread, so the snapshots are taken at (nearly) the same moment. After its snapshot each node
writes the ring's schema (``DESCRIBE SCHEMA`` from ``cqlsh`` on its own CQL port) next to its data, at
``<data_directory>/snapshot-schema/<tag>.cql``, so whatever ships the snapshot off the volume finds
the schema of the same moment beside it.
"""

from __future__ import annotations

__metaclass__ = type

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2, _exec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError, InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import check_dns_label
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

# nodetool's own rule for a tag is looser; this keeps it a plain file name everywhere it goes.
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# $1 the tag, $2 the data directory. Prints "taken" or "exists" (a snapshot of that tag is kept as it is).
TAKE = r"""set -eu
tag=$1 data=$2
if ls -d "$data"/data/*/*/snapshots/"$tag" >/dev/null 2>&1; then echo exists; exit 0; fi
nodetool snapshot -t "$tag" >&2
mkdir -p "$data/snapshot-schema"
HOME=/tmp cqlsh -e 'DESCRIBE SCHEMA' >"$data/snapshot-schema/$tag.cql.part"
mv "$data/snapshot-schema/$tag.cql.part" "$data/snapshot-schema/$tag.cql"
echo taken
"""

# $1 the tag, $2 the data directory. Prints "cleared" or "absent".
CLEAR = r"""set -eu
tag=$1 data=$2 found=absent
if ls -d "$data"/data/*/*/snapshots/"$tag" >/dev/null 2>&1; then nodetool clearsnapshot -t "$tag" >&2; found=cleared; fi
for f in "$data/snapshot-schema/$tag.cql" "$data/snapshot-schema/$tag.cql.part"; do
  if [ -e "$f" ]; then rm -f "$f"; found=cleared; fi
done
echo $found
"""


def validate(params: Params) -> None:
    check_dns_label("name", params.get("name"))
    check_dns_label("namespace", params.get("namespace"))
    if not TAG.match(params.get("tag") or ""):
        raise InvalidInput("tag", "%r must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or "
                                  "digit" % (params.get("tag"),))
    data = params.get("data_directory") or ""
    if not data.startswith("/") or any(c in data for c in "\n\"'$`\\"):
        raise InvalidInput("data_directory", "%r must be an absolute path without quotes, '$', '`' or '\\'" % (data,))
    if int(params.get("timeout") or 0) <= 0:
        raise InvalidInput("timeout", "must be a positive number of seconds")


def ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def describe(pod: Obj) -> Obj:
    return {"name": pod["metadata"]["name"], "node": (pod.get("spec") or {}).get("nodeName"),
            "ip": (pod.get("status") or {}).get("podIP"), "ready": ready(pod)}


def ring_pods(client: KubeClient, params: Params) -> list[Obj]:
    """Every pod the StatefulSet should have, all running and ready; else an error before anything is done."""
    sts = _day2.read_statefulset(client, params["namespace"], params["name"])
    pods = _day2.read_pods(client, sts)
    want = int((sts.get("spec") or {}).get("replicas", 1))
    names = [p["metadata"]["name"] for p in pods]
    missing = ["%s-%d" % (params["name"], n) for n in range(want) if "%s-%d" % (params["name"], n) not in names]
    unready = [p["metadata"]["name"] for p in pods if not ready(p)]
    if want == 0 or missing or unready:
        why = "it has no replicas" if want == 0 else "missing: %s; not ready: %s" % (
            ", ".join(missing) or "none", ", ".join(unready) or "none")
        raise DatastoreError("StatefulSet %s/%s: a snapshot needs every node up; %s" % (
            params["namespace"], params["name"], why))
    return pods


def _exec_all(client: KubeClient, params: Params, pods: list[Obj], script: str) -> list[str]:
    """The script in every pod at once; each pod's last line of output, in the pods' order."""
    command = ["bash", "-c", script, "cassandra-snapshot", params["tag"], params["data_directory"]]

    def one(pod: Obj) -> Any:
        return _exec.run(client, params["namespace"], pod["metadata"]["name"], command,
                         container=params.get("container"), timeout=float(params["timeout"]))

    with ThreadPoolExecutor(max_workers=len(pods)) as pool:
        results = list(pool.map(one, pods))
    failed = ["%s (exit %d): %s" % (pod["metadata"]["name"], res.rc, res.stderr_text.strip()[-500:])
              for pod, res in zip(pods, results) if res.rc != 0]
    if failed:
        raise DatastoreError("snapshot %s of %s/%s failed on %s" % (
            params["tag"], params["namespace"], params["name"], "; ".join(failed)))
    return [(res.stdout_text.strip().splitlines() or [""])[-1] for res in results]


def run(task: Task, client: KubeClient) -> Result:
    params = task.params
    validate(params)
    present = params.get("state", "present") == "present"
    if present:
        pods = ring_pods(client, params)
    else:
        sts = _day2.read_statefulset(client, params["namespace"], params["name"])
        pods = [p for p in _day2.read_pods(client, sts) if ready(p)]
    nodes = [describe(p) for p in pods]
    result: Result = {"changed": False, "tag": params["tag"], "pods": nodes}
    if task.check_mode or not pods:
        result["changed"] = bool(pods) and present
        return result
    outcome = _exec_all(client, params, pods, TAKE if present else CLEAR)
    for node, word in zip(nodes, outcome):
        node["outcome"] = word
    result["changed"] = any(word in ("taken", "cleared") for word in outcome)
    return result
