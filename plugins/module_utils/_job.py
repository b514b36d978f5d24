# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a Job to its end: build it, (re)create it only when needed, wait, report its pods.

A Job's pod template cannot change once created, so "apply" makes no sense for it.
Instead the requested spec is hashed and the hash stored in an annotation; a
re-run compares hashes and leaves an identical Job alone, or deletes and recreates
it when the spec changed (or when asked to).
"""

from __future__ import annotations

__metaclass__ = type

import copy
import hashlib
import json
from typing import Any, cast

from ansible_collections.datastore.kubernetes.plugins.module_utils import _status, _wait
from ansible_collections.datastore.kubernetes.plugins.module_utils._apply import dry_run_create, make_diff, object_ref
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import (
    InvalidInput,
    KubeApiError,
    WaitFailed,
    WaitTimeout,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KubeClient
from ansible_collections.datastore.kubernetes.plugins.module_utils._pod_spec import container_opening
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Result, Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

API_VERSION = "batch/v1"
KIND = "Job"
SPEC_HASH_ANNOTATION = "datastore.kubernetes/spec-hash"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
CONTAINER_NAME = "main"
DEFAULT_SCRIPT_DIR = "/opt/job"


# -- building ------------------------------------------------------------------
def _env_list(env: Any) -> list[dict[str, Any]]:
    """``{NAME: value}`` -> EnvVar list; a dict value is a ``valueFrom`` source."""
    out = []
    for key in sorted(env or {}):
        value = env[key]
        if isinstance(value, dict):
            out.append({"name": key, "valueFrom": value})
        elif value is None:
            out.append({"name": key, "value": ""})
        elif isinstance(value, bool):
            out.append({"name": key, "value": "true" if value else "false"})
        else:
            out.append({"name": key, "value": str(value)})
    return out


def _script(params: Params, container: dict[str, Any], pod_spec: dict[str, Any]) -> None:
    script = params.get("script_configmap")
    if not script:
        return
    if params.get("command"):
        raise InvalidInput("script_configmap", "runs the script as the container command; do not set command too")
    mount_path = (script.get("mount_path") or DEFAULT_SCRIPT_DIR).rstrip("/") or "/"
    path = "%s/%s" % (mount_path.rstrip("/"), script["key"])
    pod_spec["volumes"] = [{"name": "script", "configMap": {
        "name": script["name"], "items": [{"key": script["key"], "path": script["key"]}], "defaultMode": 0o555}}]
    container["volumeMounts"] = [{"name": "script", "mountPath": mount_path, "readOnly": True}]
    interpreter = script.get("interpreter")
    container["command"] = ([interpreter] if interpreter else []) + [path]


def build_job(params: Params) -> Obj:
    """The Job manifest the options ask for (without the spec-hash annotation)."""
    if params.get("definition"):
        return _from_definition(params)
    for field in ("name", "image"):
        if not params.get(field):
            raise InvalidInput(field, "is required unless definition is given")
    container = container_opening(CONTAINER_NAME, params)
    pod_spec = {"restartPolicy": params.get("restart_policy") or "Never", "containers": [container]}
    _script(params, container, pod_spec)
    if params.get("env"):
        container["env"] = _env_list(params["env"])
    env_from = [{"secretRef": {"name": n}} for n in params.get("env_from_secrets") or []]
    env_from += [{"configMapRef": {"name": n}} for n in params.get("env_from_configmaps") or []]
    if env_from:
        container["envFrom"] = env_from
    if params.get("resources"):
        container["resources"] = params["resources"]
    if params.get("service_account"):
        pod_spec["serviceAccountName"] = params["service_account"]

    labels = dict(params.get("labels") or {})
    template_meta = {}
    if labels:
        template_meta["labels"] = dict(labels)
    if params.get("pod_annotations"):
        template_meta["annotations"] = dict(params["pod_annotations"])
    spec = {"template": {"metadata": template_meta, "spec": pod_spec}}
    for option, field in (("completions", "completions"), ("parallelism", "parallelism"),
                          ("completion_mode", "completionMode"), ("backoff_limit", "backoffLimit"),
                          ("active_deadline_seconds", "activeDeadlineSeconds"),
                          ("ttl_seconds_after_finished", "ttlSecondsAfterFinished")):
        if params.get(option) is not None:
            if isinstance(params[option], int) and params[option] < 0:
                raise InvalidInput(option, "must be 0 or more, got %s" % params[option])
            spec[field] = params[option]
    if spec.get("completionMode") == "Indexed" and not spec.get("completions"):
        raise InvalidInput("completions", "is required with completion_mode=Indexed")
    meta = {"name": params["name"], "namespace": params["namespace"]}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


def _from_definition(params: Params) -> Obj:
    for field in ("image", "command", "args", "script_configmap", "env", "env_from_secrets", "env_from_configmaps"):
        if params.get(field):
            raise InvalidInput(field, "cannot be combined with definition; put it in the definition instead")
    job = copy.deepcopy(params["definition"])
    if not isinstance(job, dict) or job.get("kind", KIND) != KIND:
        raise InvalidInput("definition", "must be a Job manifest")
    job.setdefault("apiVersion", API_VERSION)
    job["kind"] = KIND
    meta = job.setdefault("metadata", {})
    for field in ("name", "namespace"):
        if params.get(field) and meta.get(field) and params[field] != meta[field]:
            raise InvalidInput(field, "%s differs from the definition's metadata.%s %s"
                               % (params[field], field, meta[field]))
        if params.get(field):
            meta[field] = params[field]
        if not meta.get(field):
            raise InvalidInput(field, "is required (set it or metadata.%s in definition)" % field)
    template = (job.get("spec") or {}).get("template")
    if not isinstance(template, dict) or not (template.get("spec") or {}).get("containers"):
        raise InvalidInput("definition", "spec.template.spec.containers is required")
    template["spec"].setdefault("restartPolicy", "Never")
    if params.get("pod_annotations"):
        template.setdefault("metadata", {}).setdefault("annotations", {}).update(params["pod_annotations"])
    if params.get("labels"):
        meta.setdefault("labels", {}).update(params["labels"])
    return job


def spec_hash(job: Obj) -> str:
    """A stable digest of what was asked for; the server's defaults do not enter it."""
    body = copy.deepcopy(job)
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    annotations.pop(SPEC_HASH_ANNOTATION, None)
    if not annotations:
        meta.pop("annotations", None)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def with_hash(job: Obj) -> tuple[Obj, str]:
    job = copy.deepcopy(job)
    digest = spec_hash(job)
    job["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = digest
    return job, digest


# -- reading state ---------------------------------------------------------------
def job_status(job: Obj) -> str:
    if _wait.condition_true(job, "Complete"):
        return "Complete"
    if _wait.condition_true(job, "Failed"):
        return "Failed"
    if _wait.condition_true(job, "Suspended"):
        return "Suspended"
    return "Running"


def finished(job: Obj | None) -> bool:
    """Watch predicate: the Job reached Complete or Failed (never raises)."""
    return job is not None and job_status(job) in ("Complete", "Failed")


def _main_state(pod: Obj) -> tuple[int | None, str | None]:
    """``(exit_code, reason)`` of the pod's first terminated (else first) container."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    chosen = None
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if term and (chosen is None or (term.get("exitCode") or 0) != 0):
            chosen = term
            if term.get("exitCode"):
                break
    if chosen:
        return chosen.get("exitCode"), chosen.get("reason") or (pod.get("status") or {}).get("reason")
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return None, waiting.get("reason")
    return None, (pod.get("status") or {}).get("reason")


def _pod_selector(job: Obj) -> str:
    labels = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if labels:
        return _wait.selector_string(labels)
    return "batch.kubernetes.io/controller-uid=%s" % job["metadata"]["uid"]


def list_pods(client: KubeClient, job: Obj) -> list[Obj]:
    meta = job["metadata"]
    return client.list("v1", "Pod", meta["namespace"], label_selector=_pod_selector(job)).get("items") or []


def describe_pods(client: KubeClient, job: Obj, log_lines: int, pods: list[Obj] | None = None) -> list[dict[str, Any]]:
    """Per pod: name, completion index, phase, exit code, reason and the tail of its log."""
    meta = job["metadata"]
    pods = list_pods(client, job) if pods is None else pods
    out = []
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"])):
        pmeta = pod["metadata"]
        index: Any = (pmeta.get("annotations") or {}).get(INDEX_ANNOTATION)
        exit_code, reason = _main_state(pod)
        phase = (pod.get("status") or {}).get("phase")
        log = []
        if log_lines and phase in ("Running", "Succeeded", "Failed"):
            # Best effort: a node that keeps no logs answers with nothing or an error.
            text = client.pod_log(meta["namespace"], pmeta["name"], tail_lines=log_lines)
            log = text.splitlines()[-log_lines:] if text else []
        out.append({"name": pmeta["name"], "completion_index": int(index) if index not in (None, "") else None,
                    "phase": phase, "exit_code": exit_code, "reason": reason, "log": log})
    return out


def summary(job: Obj, pods: list[dict[str, Any]]) -> dict[str, Any]:
    status = job.get("status") or {}
    return {
        "status": job_status(job),
        # Not top-level "failed": Ansible reads that key as the task's own outcome.
        "counts": {"succeeded": status.get("succeeded", 0), "failed": status.get("failed", 0),
                   "active": status.get("active", 0)},
        "completed_indexes": status.get("completedIndexes"),
        "uid": job["metadata"].get("uid"),
        "pods": pods,
    }


def failure_message(job: Obj, pods: list[dict[str, Any]]) -> str:
    cond = (_wait.condition(job, "Failed") or {}) if _wait.condition_true(job, "Failed") else {}
    lines = ["%s failed: %s%s" % (object_ref(job), cond.get("reason") or "Failed",
                                  (" (%s)" % cond["message"]) if cond.get("message") else "")]
    bad = [p for p in pods if p["phase"] == "Failed" or (p["exit_code"] not in (None, 0))] or pods
    for pod in bad:
        idx = "" if pod["completion_index"] is None else " (index %s)" % pod["completion_index"]
        lines.append("pod %s%s: phase %s, exit code %s, reason %s" % (
            pod["name"], idx, pod["phase"], pod["exit_code"], pod["reason"]))
        if pod["log"]:
            lines.append("  log tail:")
            lines.extend("    " + line for line in pod["log"])
        else:
            lines.append("  (no log returned by the node)")
    return "\n".join(lines)


# -- doing ---------------------------------------------------------------------
def _wait_finished(client: KubeClient, job: Obj, timeout: float, log_lines: int) -> Obj:
    meta = job["metadata"]
    try:
        # finished() holds only for a Job, so the watch ends with one.
        return cast(Obj, _wait.watch_until(client, API_VERSION, KIND, meta["namespace"], meta["name"], finished,
                                           timeout))
    except WaitTimeout as exc:
        last = exc.details.get("last") or job
        raw = list_pods(client, last)
        pods = describe_pods(client, last, log_lines, raw)
        # Why a pod that is not ready is stuck: the scheduler's reason, image pulls, crash loops, probes.
        why = dict(_status.pod_diagnoses(client, raw))
        lines = ["pod %s: phase %s%s%s" % (p["name"], p["phase"], (", " + p["reason"]) if p["reason"] else "",
                                           ("; " + why[p["name"]]) if p["name"] in why else "")
                 for p in pods]
        detail = ("; " + "; ".join(lines)) if lines else ""
        raise WaitTimeout("%s: not finished after %ss%s" % (object_ref(job), timeout, detail),
                          not_ready=lines, **summary(last, pods))


def _delete(client: KubeClient, job: Obj, timeout: float, propagation: str) -> None:
    meta = job["metadata"]
    client.delete(API_VERSION, KIND, meta["name"], meta["namespace"], propagation=propagation,
                  preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
    _wait.watch_until(client, API_VERSION, KIND, meta["namespace"], meta["name"],
                      lambda o: o is None or o["metadata"].get("uid") != meta.get("uid"), timeout)


def run_job(client: KubeClient, params: Params, check_mode: bool = False, diff_mode: bool = False) -> Result:
    """Make the Job exist as asked (or be gone) and, when waiting, report how it ended."""
    timeout = params.get("wait_timeout") or 300
    log_lines = params.get("log_lines") or 0
    if params.get("state") == "absent":
        def_meta = (params.get("definition") or {}).get("metadata") or {}
        name: Any = params.get("name") or def_meta.get("name")
        namespace: Any = params.get("namespace") or def_meta.get("namespace")
        for field, value in (("name", name), ("namespace", namespace)):
            if not value:
                raise InvalidInput(field, "is required")
        live = client.get(API_VERSION, KIND, name, namespace)
        result = {"changed": False, "name": name, "namespace": namespace}
        if live is None:
            return result
        result["changed"] = True
        if diff_mode:
            result["diff"] = make_diff(live, None)
        if check_mode:
            return result
        # Foreground: the Job disappears only after its pods are gone, so waiting for it covers both.
        if params.get("wait", True):
            _delete(client, live, timeout, "Foreground")
        else:
            client.delete(API_VERSION, KIND, name, namespace, propagation="Foreground")
        return result

    wanted, digest = with_hash(build_job(params))
    name, namespace = wanted["metadata"]["name"], wanted["metadata"]["namespace"]
    live = client.get(API_VERSION, KIND, name, namespace)
    result = {"changed": False, "name": name, "namespace": namespace, "spec_hash": digest}
    live_hash = ((live or {}).get("metadata", {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    rerun = params.get("rerun") or "on_change"
    recreate = live is not None and (rerun == "always" or (rerun == "on_change" and live_hash != digest))
    if live is not None and not recreate:
        if rerun == "never" and live_hash != digest:
            result["warnings"] = ["%s exists with a different spec; left alone because rerun=never"
                                  % object_ref(live)]
        job = live
    else:
        result["changed"] = True
        if diff_mode:
            result["diff"] = make_diff(live, wanted)
        if check_mode:
            if live is None:
                dry_run_create(client, wanted)
            result.update({"status": "Pending", "counts": {"succeeded": 0, "failed": 0, "active": 0}, "pods": []})
            result["recreated"] = live is not None
            return result
        if live is not None:
            _delete(client, live, timeout, "Background")
        try:
            job = client.create(wanted)
        except KubeApiError as exc:
            raise KubeApiError("%s: %s" % (object_ref(wanted), exc.msg), status=exc.status, reason=exc.reason,
                               causes=exc.causes)
        job.setdefault("kind", KIND)
        job.setdefault("apiVersion", API_VERSION)
        result["recreated"] = live is not None

    if params.get("wait", True) and not check_mode and not finished(job):
        job = _wait_finished(client, job, timeout, log_lines)
    pods = describe_pods(client, job, log_lines) if not check_mode or live is not None else []
    result.update(summary(job, pods))
    if result["status"] == "Failed" and params.get("wait", True):
        msg = failure_message(job, pods)
        if not result["changed"]:
            msg += "\nThe Job was not run again because its spec did not change; set rerun=always to run it again."
        raise WaitFailed(msg, **{k: v for k, v in result.items() if k != "warnings"})
    return result


def run(task: Task, client: KubeClient) -> Result:
    """The ``job`` module's work."""
    result = run_job(client, task.params, check_mode=task.check_mode, diff_mode=task.diff)
    for warning in result.pop("warnings", []):
        task.warn(warning)
    return result
