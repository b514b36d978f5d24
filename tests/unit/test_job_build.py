"""Unit tests for the Job builder, spec hashing and pod reporting (no cluster)."""

from __future__ import annotations

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _job
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput, WaitFailed

BASE = {"name": "load", "namespace": "db", "image": "busybox:1.36", "state": "present", "wait": True,
        "wait_timeout": 30, "log_lines": 5, "rerun": "on_change", "restart_policy": "Never"}


def params(**extra):
    out = dict(BASE)
    out.update(extra)
    return out


def test_build_from_options():
    job = _job.build_job(params(
        command=["sh", "-c", "echo hi"], env={"A": "1", "B": True, "PW": {"secretKeyRef": {"name": "s", "key": "p"}}},
        env_from_secrets=["creds"], env_from_configmaps=["cfg"], completions=3, parallelism=3,
        completion_mode="Indexed", backoff_limit=0, ttl_seconds_after_finished=60, labels={"app": "load"},
        pod_annotations={"x": "y"}))
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"] == {"name": "load", "namespace": "db", "labels": {"app": "load"}}
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["completionMode"], spec["backoffLimit"]) == (
        3, 3, "Indexed", 0)
    assert spec["ttlSecondsAfterFinished"] == 60
    tmpl = spec["template"]
    assert tmpl["metadata"] == {"labels": {"app": "load"}, "annotations": {"x": "y"}}
    assert tmpl["spec"]["restartPolicy"] == "Never"
    container = tmpl["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c", "echo hi"]
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "true"},
                                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p"}}}]
    assert container["envFrom"] == [{"secretRef": {"name": "creds"}}, {"configMapRef": {"name": "cfg"}}]


def test_script_configmap_is_mounted_and_run():
    job = _job.build_job(params(script_configmap={"name": "scripts", "key": "load.sh", "mount_path": "/opt/x/",
                                                  "interpreter": "/bin/sh"}, args=["--fast"]))
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["/bin/sh", "/opt/x/load.sh"]
    assert container["args"] == ["--fast"]
    assert container["volumeMounts"] == [{"name": "script", "mountPath": "/opt/x", "readOnly": True}]
    assert pod["volumes"][0]["configMap"]["items"] == [{"key": "load.sh", "path": "load.sh"}]
    job = _job.build_job(params(script_configmap={"name": "s", "key": "run", "mount_path": "/s", "interpreter": ""}))
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["/s/run"]


def test_bad_input_names_the_field():
    with pytest.raises(InvalidInput) as err:
        _job.build_job(params(image=None))
    assert err.value.field == "image"
    with pytest.raises(InvalidInput) as err:
        _job.build_job(params(completion_mode="Indexed"))
    assert err.value.field == "completions"
    with pytest.raises(InvalidInput) as err:
        _job.build_job(params(definition={"kind": "Job", "spec": {"template": {"spec": {"containers": [{}]}}}},
                              image="x"))
    assert err.value.field == "image"


def test_definition_gets_name_namespace_and_defaults():
    definition = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "load"},
                  "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    job = _job.build_job(params(image=None, definition=definition, pod_annotations={"a": "b"}))
    assert job["metadata"]["namespace"] == "db"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    assert "namespace" not in definition["metadata"]  # the input is not modified
    with pytest.raises(InvalidInput):
        _job.build_job(params(image=None, name="other", definition=definition))


def test_spec_hash_is_stable_and_ignores_its_own_annotation():
    job = _job.build_job(params(command=["true"]))
    hashed, digest = _job.with_hash(job)
    assert hashed["metadata"]["annotations"][_job.SPEC_HASH_ANNOTATION] == digest
    assert _job.spec_hash(hashed) == digest
    assert _job.with_hash(_job.build_job(params(command=["false"])))[1] != digest


def pod(name, phase, exit_code=None, reason=None, index=None, created="2024-01-01T00:00:00Z"):
    status = {"phase": phase}
    if exit_code is not None:
        status["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": exit_code,
                                                                                 "reason": reason}}}]
    meta = {"name": name, "creationTimestamp": created}
    if index is not None:
        meta["annotations"] = {_job.INDEX_ANNOTATION: str(index)}
    return {"metadata": meta, "status": status}


class FakeClient:
    def __init__(self, pods, logs):
        self.pods = pods
        self.logs = logs
        self.log_calls = []

    def list(self, api_version, kind, namespace, label_selector=None):
        assert label_selector == "batch.kubernetes.io/controller-uid=u1"
        return {"items": self.pods}

    def pod_log(self, namespace, name, container=None, tail_lines=None):
        self.log_calls.append((name, tail_lines))
        return self.logs.get(name, "")


JOB = {"apiVersion": "batch/v1", "kind": "Job",
       "metadata": {"name": "load", "namespace": "db", "uid": "u1"},
       "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
       "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                               "message": "Job has reached the specified backoff limit"}]}}


def test_describe_pods_and_failure_message():
    client = FakeClient([pod("load-b", "Failed", 3, "Error", index=1, created="2024-01-01T00:00:02Z"),
                         pod("load-a", "Succeeded", 0, "Completed", index=0)],
                        {"load-b": "line1\nline2\nboom\n"})
    pods = _job.describe_pods(client, JOB, 2)
    assert [p["name"] for p in pods] == ["load-a", "load-b"]
    assert pods[1] == {"name": "load-b", "completion_index": 1, "phase": "Failed", "exit_code": 3,
                       "reason": "Error", "log": ["line2", "boom"]}
    assert pods[0]["log"] == []  # the node returned nothing: best effort
    assert _job.job_status(JOB) == "Failed" and _job.finished(JOB)
    msg = _job.failure_message(JOB, pods)
    assert "Job db/load failed: BackoffLimitExceeded" in msg
    assert "pod load-b (index 1): phase Failed, exit code 3, reason Error" in msg
    assert "    boom" in msg
    assert "load-a" not in msg


class RunClient(FakeClient):
    """Enough of KubeClient for run_job on a Job that already exists."""

    def __init__(self, live):
        super().__init__([pod("load-a", "Failed", 3, "Error")], {})
        self.live = live
        self.writes = []

    def get(self, *args):
        return self.live

    def create(self, obj, dry_run=False):
        self.writes.append(("create", dry_run))
        return obj

    def delete(self, *args, **kwargs):
        self.writes.append(("delete",))


def test_unchanged_failed_job_is_not_rerun_and_fails_again():
    wanted, digest = _job.with_hash(_job.build_job(params(command=["x"])))
    live = dict(JOB, metadata=dict(JOB["metadata"], annotations={_job.SPEC_HASH_ANNOTATION: digest}))
    client = RunClient(live)
    with pytest.raises(WaitFailed) as err:
        _job.run_job(client, params(command=["x"]))
    assert "rerun=always" in err.value.msg and err.value.details["changed"] is False
    assert client.writes == []


def test_check_mode_never_deletes():
    live = dict(JOB, metadata=dict(JOB["metadata"], annotations={_job.SPEC_HASH_ANNOTATION: "old"}))
    client = RunClient(live)
    result = _job.run_job(client, params(command=["x"]), check_mode=True)
    assert result["changed"] and result["recreated"]
    assert client.writes == []
