# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Elasticsearch snapshots: the work of the ``elasticsearch_snapshot`` module.

The cluster's HTTP API is asked from inside a ready pod of the StatefulSet through ``pods/exec``
(``_health.es_command``, as the day-2 engine does): nothing needs a route to the pods. The
actions:

- ``apply``: the snapshot repository registered and the snapshot lifecycle (SLM) policy set, each
  read first and written only when it differs;
- ``snapshot``: ``apply``, then a snapshot taken now and waited for (``SUCCESS`` or a failure);
- ``list``: the repository's snapshots;
- ``restore``: chosen indices of a snapshot restored (renamed, or over open indices only when asked).
"""

from __future__ import annotations

__metaclass__ = type

import datetime
import fnmatch
import json
import re
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2
from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan
from ansible_collections.datastore.kubernetes.plugins.module_utils import _health
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError, ExecError, InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import check_dns_label
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

ACTIONS = ("apply", "snapshot", "list", "restore")
# Repository names, policy ids and snapshot names: lower case, no characters that need escaping in a URL path.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_INDEX = re.compile(r"^[a-z0-9*][a-z0-9._*-]{0,254}$")


class Api:
    """One ready pod's HTTP API: ``(status, answer)`` for a request, the answer parsed when it is JSON."""

    def __init__(self, client: KubeClient, namespace: str, pod: str, container: str | None, timeout: float) -> None:
        self.client, self.namespace, self.pod, self.container, self.timeout = client, namespace, pod, container, timeout

    def call(self, method: str, path: str, body: Obj | None = None, timeout: float | None = None,
             missing_ok: bool = False) -> Any:
        """The parsed answer; ``None`` for a 404 when ``missing_ok``; ``DatastoreError`` for any other failure."""
        try:
            return _health.es_call(self.client, self.namespace, self.pod, self.container, method, path, body,
                                   timeout=timeout or self.timeout)
        except _health.EsRequestFailed as exc:
            if missing_ok and exc.missing:
                return None
            raise DatastoreError("Elasticsearch %s/%s: %s %s failed: %s" % (
                self.namespace, self.pod, method, path.split("?")[0], exc.reason))


# -- the wanted state (pure) -------------------------------------------------------------------
def _text(value: Any) -> str:
    """A setting as Elasticsearch reports it back (every repository setting is a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def wanted_repository(params: Params) -> Obj:
    return {"type": params["repository_type"],
            "settings": {key: _text(value) for key, value in (params.get("repository_settings") or {}).items()}}


def current_repository(answer: Obj | None, name: str) -> Obj | None:
    if not answer or name not in answer:
        return None
    found = answer[name]
    return {"type": found.get("type"),
            "settings": {key: _text(value) for key, value in (found.get("settings") or {}).items()}}


def wanted_policy(params: Params) -> Obj | None:
    policy = params.get("policy")
    if not policy:
        return None
    body: Obj = {"schedule": policy["schedule"], "name": policy.get("snapshot_name") or "<snap-{now/m}>",
                 "repository": params["repository"],
                 "config": {"indices": policy.get("indices") or ["*"],
                            "include_global_state": bool(policy.get("include_global_state", False))}}
    retention = {key: policy[key] for key in ("expire_after", "min_count", "max_count") if policy.get(key) is not None}
    if retention:
        body["retention"] = retention
    return body


def current_policy(answer: Obj | None, policy_id: str) -> Obj | None:
    found = (answer or {}).get(policy_id)
    if not found:
        return None
    return found.get("policy")


def same_policy(current: Obj | None, wanted: Obj) -> bool:
    if current is None:
        return False
    config = current.get("config") or {}
    indices = config.get("indices")
    if isinstance(indices, str):
        indices = indices.split(",")
    return (current.get("schedule") == wanted["schedule"] and current.get("name") == wanted["name"]
            and current.get("repository") == wanted["repository"]
            and list(indices or ["*"]) == wanted["config"]["indices"]
            and bool(config.get("include_global_state", True)) == wanted["config"]["include_global_state"]
            and (current.get("retention") or {}) == wanted.get("retention", {}))


def java_replacement(replacement: str) -> str:
    """A Java regex replacement (``$1``) for Python's ``re.sub`` (``\\g<1>``)."""
    return re.sub(r"\$(\d+)", r"\\g<\1>", replacement.replace("\\", "\\\\"))


def restore_targets(snapshot_indices: list[str], chosen: list[str], pattern: str | None,
                    replacement: str | None) -> dict[str, str]:
    """``{index in the snapshot: the index it is restored as}`` for the chosen names or patterns."""
    picked = sorted({index for index in snapshot_indices for want in chosen if fnmatch.fnmatchcase(index, want)})
    targets = {}
    for index in picked:
        target = index
        if pattern:
            target = re.sub("^(?:%s)$" % pattern, java_replacement(replacement or ""), index)
        targets[index] = target
    return targets


def newest_success(snapshots: list[Obj]) -> Obj | None:
    done = [s for s in snapshots if s.get("state") == "SUCCESS"]
    return max(done, key=lambda s: (s.get("end_time_in_millis") or 0, s.get("snapshot") or "")) if done else None


def summary(snapshot: Obj) -> Obj:
    return {"snapshot": snapshot.get("snapshot"), "state": snapshot.get("state"),
            "indices": sorted(snapshot.get("indices") or []), "start_time": snapshot.get("start_time"),
            "end_time": snapshot.get("end_time"),
            "duration_in_millis": snapshot.get("duration_in_millis"),
            "shards": snapshot.get("shards") or {}, "failures": snapshot.get("failures") or []}


# -- validation ---------------------------------------------------------------------------------
def validate(params: Params) -> None:
    check_dns_label("name", params.get("name"))
    check_dns_label("namespace", params.get("namespace"))
    if params.get("container") is not None:
        check_dns_label("container", params["container"])
    if not _NAME.match(params.get("repository") or ""):
        raise InvalidInput("repository", "must be a lower-case name of letters, digits, '.', '_' and '-'")
    if not re.match(r"^[a-z0-9_-]+$", params.get("repository_type") or ""):
        raise InvalidInput("repository_type", "must be a repository type such as fs or s3")
    policy = params.get("policy")
    if policy:
        if not _NAME.match(policy.get("id") or ""):
            raise InvalidInput("policy.id", "must be a lower-case name of letters, digits, '.', '_' and '-'")
        if not re.match(r"^\S+( \S+){5,6}$", policy.get("schedule") or ""):
            raise InvalidInput("policy.schedule", "must be an Elasticsearch cron expression of 6 or 7 fields "
                                                  "(seconds first), such as '0 30 1 * * ?'")
        for key in ("min_count", "max_count"):
            if policy.get(key) is not None and int(policy[key]) < 1:
                raise InvalidInput("policy.%s" % key, "must be 1 or more")
        if policy.get("expire_after") is not None and not re.match(r"^[0-9]+(d|h|m|s|ms)$", str(policy["expire_after"])):
            raise InvalidInput("policy.expire_after", "must be a time such as 30d or 12h")
    for field in ("indices",):
        for index in params.get(field) or []:
            if not _INDEX.match(index):
                raise InvalidInput(field, "%r is not an index name or pattern" % index)
    if params.get("snapshot") is not None and not _NAME.match(params["snapshot"]):
        raise InvalidInput("snapshot", "must be a lower-case name of letters, digits, '.', '_' and '-'")
    if params["action"] == "restore" and not params.get("indices"):
        raise InvalidInput("indices", "name the indices to restore (names or patterns); the action restores only those")
    if params.get("rename_pattern"):
        try:
            re.compile(params["rename_pattern"])
        except re.error as exc:
            raise InvalidInput("rename_pattern", "is not a regular expression: %s" % exc)
    if params["wait_timeout"] <= 0:
        raise InvalidInput("wait_timeout", "must be more than 0 seconds")


# -- the work -----------------------------------------------------------------------------------
def ready_pod(client: KubeClient, params: Params) -> str:
    sts = _day2.read_statefulset(client, params["namespace"], params["name"])
    for pod in _day2.read_pods(client, sts):
        if plan.is_ready(pod) and not plan.is_terminating(pod):
            return plan.pod_name(pod)
    raise ExecError("StatefulSet %s/%s: no ready Elasticsearch pod to ask" % (params["namespace"], params["name"]))


def has_slm(api: Api) -> bool:
    """Whether the cluster has snapshot lifecycle management (the x-pack-slm module; minimal builds lack it)."""
    nodes = api.call("GET", "/_nodes/_local/plugins?filter_path=nodes.*.modules.name") or {}
    for node in (nodes.get("nodes") or {}).values():
        names = [m.get("name", "") for m in node.get("modules") or []]
        return any(name in ("x-pack-slm", "x-pack-ilm") for name in names)
    return False


def apply(task: Task, api: Api, result: Result, with_policy: bool = True) -> None:
    """The repository, then the policy: each compared with what the cluster holds, written when it differs."""
    params = task.params
    repo = params["repository"]
    policy = wanted_policy(params) if with_policy else None
    if policy is not None and not has_slm(api):
        raise InvalidInput("policy", "the cluster has no snapshot lifecycle management (no x-pack-slm module in "
                                     "its distribution); take snapshots with action=snapshot on a schedule instead")
    before: Obj = {"repository": current_repository(api.call("GET", "/_snapshot/%s" % repo, missing_ok=True), repo)}
    after: Obj = {"repository": wanted_repository(params)}
    if policy is not None:
        policy_id = params["policy"]["id"]
        before["policy"] = current_policy(api.call("GET", "/_slm/policy", missing_ok=True), policy_id)
        after["policy"] = policy
    repo_changed = before["repository"] != after["repository"]
    policy_changed = policy is not None and not same_policy(before.get("policy"), policy)
    result["repository"] = after["repository"]
    result["repository_registered"] = before["repository"] is not None
    result["policy"] = policy
    if task.diff:
        result["diff"] = {"before": before, "after": after}
    if repo_changed or policy_changed:
        result["changed"] = True
    if task.check_mode:
        return
    if repo_changed:
        # verify=true: every node must reach the location (the shared volume is mounted everywhere).
        api.call("PUT", "/_snapshot/%s?verify=true" % repo, after["repository"])
    if policy_changed:
        api.call("PUT", "/_slm/policy/%s" % params["policy"]["id"], policy)


def snapshots(api: Api, repo: str, missing_ok: bool = False) -> list[Obj]:
    answer = api.call("GET", "/_snapshot/%s/_all" % repo, missing_ok=missing_ok) or {}
    return sorted((summary(s) for s in answer.get("snapshots") or []), key=lambda s: s.get("start_time") or "")


def take_snapshot(task: Task, api: Api, result: Result) -> None:
    params = task.params
    name = params.get("snapshot") or "snap-" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dt%H%M%Sz")
    body = {"indices": ",".join(params.get("indices") or ["*"]), "include_global_state": False}
    result["changed"] = True
    result["snapshot"] = {"snapshot": name, "indices": params.get("indices") or ["*"], "state": None}
    if task.check_mode:
        return
    answer = api.call("PUT", "/_snapshot/%s/%s?wait_for_completion=true" % (params["repository"], name), body,
                      timeout=params["wait_timeout"]) or {}
    taken = summary(answer.get("snapshot") or {})
    result["snapshot"] = taken
    if taken.get("state") != "SUCCESS":
        raise DatastoreError("snapshot %s in repository %s ended %s, not SUCCESS: %s" % (
            name, params["repository"], taken.get("state"), json.dumps(taken.get("failures"))[:500]), snapshot=taken)


def restore(task: Task, api: Api, result: Result) -> None:
    params = task.params
    repo = params["repository"]
    # In check mode a repository not registered yet cannot be read: say what would be restored.
    unread = task.check_mode and not result.get("repository_registered", True)
    known = [] if unread else snapshots(api, repo)
    if unread:
        result["changed"] = True
        result["restore"] = {"snapshot": params.get("snapshot") or "(the newest successful one)",
                             "indices": {index: index for index in params["indices"]}, "closed": []}
        return
    if params.get("snapshot"):
        chosen = [s for s in known if s["snapshot"] == params["snapshot"]]
        if not chosen:
            raise InvalidInput("snapshot", "%s is not in repository %s" % (params["snapshot"], repo))
        snap = chosen[0]
        if snap["state"] != "SUCCESS":
            raise InvalidInput("snapshot", "%s is %s, not SUCCESS: it is not restored" % (snap["snapshot"], snap["state"]))
    else:
        found = newest_success(known)
        if found is None:
            raise DatastoreError("repository %s holds no successful snapshot to restore" % repo)
        snap = found
    targets = restore_targets(snap["indices"], params["indices"], params.get("rename_pattern"),
                              params.get("rename_replacement"))
    if not targets:
        raise InvalidInput("indices", "none of %s is in snapshot %s (it holds %s)" % (
            params["indices"], snap["snapshot"], ", ".join(snap["indices"]) or "no index"))
    existing = api.call("GET", "/_cat/indices?format=json&h=index,status&expand_wildcards=all") or []
    status = {row["index"]: row.get("status") for row in existing}
    open_targets = sorted(t for t in targets.values() if status.get(t) == "open")
    if open_targets and not params["replace_open"]:
        raise InvalidInput("replace_open", "the open indices %s would be overwritten: restore under other names "
                                           "(rename_pattern) or set replace_open to close and replace them"
                           % ", ".join(open_targets))
    result["changed"] = True
    result["restore"] = {"snapshot": snap["snapshot"], "indices": targets, "closed": open_targets}
    if task.check_mode:
        return
    for index in open_targets:
        api.call("POST", "/%s/_close" % index)
    body: Obj = {"indices": ",".join(sorted(targets)), "include_global_state": False}
    if params.get("rename_pattern"):
        body.update(rename_pattern=params["rename_pattern"], rename_replacement=params.get("rename_replacement") or "")
    answer = api.call("POST", "/_snapshot/%s/%s/_restore?wait_for_completion=true" % (repo, snap["snapshot"]), body,
                      timeout=params["wait_timeout"]) or {}
    shards = (answer.get("snapshot") or {}).get("shards") or {}
    result["restore"]["shards"] = shards
    if shards.get("failed"):
        raise DatastoreError("restore of %s from snapshot %s: %d of %d shards failed" % (
            ", ".join(sorted(targets.values())), snap["snapshot"], shards["failed"], shards.get("total", 0)),
            restore=result["restore"])


def run(task: Task, client: KubeClient) -> Result:
    params = task.params
    validate(params)
    api = Api(client, params["namespace"], ready_pod(client, params), params.get("container"),
              float(params.get("request_timeout") or 30.0))
    result: Result = {"changed": False, "pod": api.pod}
    if params["action"] in ("apply", "snapshot"):
        apply(task, api, result)
    elif params["action"] == "restore" and params["register"]:
        # Into a fresh cluster: the repository, not the policy (that is the backed-up cluster's).
        apply(task, api, result, with_policy=False)
    if params["action"] == "snapshot":
        take_snapshot(task, api, result)
    elif params["action"] == "list":
        result["snapshots"] = snapshots(api, params["repository"])
    elif params["action"] == "restore":
        restore(task, api, result)
    return result
