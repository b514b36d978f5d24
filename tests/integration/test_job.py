"""The job module against the local cluster: success, indexed parallel runs, failure, re-runs, check mode."""

from __future__ import annotations

import pytest

FAIL_ANNOTATION = "datastore.test/fail-exit-code"


def job_params(namespace, name="load", **extra):
    params = {"name": name, "namespace": namespace, "image": "busybox:1.36",
              "command": ["sh", "-c", "echo loading; echo done"], "backoff_limit": 0, "wait_timeout": 120}
    params.update(extra)
    return params


def get_job(kubectl, namespace, name):
    proc = kubectl("get", "job", name, "-n", namespace, "-o", "json", check=False)
    return None if not isinstance(proc, dict) else proc


def assert_logs_best_effort(pod, log_lines=20):
    # Logs are best effort (a node may keep none): a list of at most log_lines strings.
    assert isinstance(pod["log"], list) and len(pod["log"]) <= log_lines
    assert all(isinstance(line, str) for line in pod["log"])


def test_job_succeeds_reports_pods_and_is_left_alone_on_rerun(run_module, kubectl, namespace):
    result = run_module("job", job_params(namespace, labels={"app": "loader"}, log_lines=5))
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["status"] == "Complete"
    assert result["counts"] == {"succeeded": 1, "failed": 0, "active": 0}
    assert len(result["pods"]) == 1
    pod = result["pods"][0]
    assert pod["phase"] == "Succeeded" and pod["exit_code"] == 0 and pod["completion_index"] is None
    assert_logs_best_effort(pod, 5)

    live = get_job(kubectl, namespace, "load")
    assert live["metadata"]["uid"] == result["uid"]
    assert live["metadata"]["annotations"]["datastore.kubernetes/spec-hash"] == result["spec_hash"]
    assert live["metadata"]["labels"]["app"] == "loader"
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in live["status"]["conditions"])

    again = run_module("job", job_params(namespace, labels={"app": "loader"}, log_lines=5))
    assert again["changed"] is False and again["status"] == "Complete"
    assert again["uid"] == result["uid"]
    assert get_job(kubectl, namespace, "load")["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_indexed_parallel_job(run_module, namespace):
    result = run_module("job", job_params(namespace, name="shards", completions=3, parallelism=3,
                                          completion_mode="Indexed"))
    assert not result.get("failed"), result.get("msg")
    assert result["status"] == "Complete" and result["counts"]["succeeded"] == 3
    assert sorted(p["completion_index"] for p in result["pods"] if p["phase"] == "Succeeded") == [0, 1, 2]
    assert result["completed_indexes"] == "0-2"


def test_failed_job_fails_task_with_exit_code(run_module, kubectl, namespace):
    params = job_params(namespace, name="broken", pod_annotations={FAIL_ANNOTATION: "3"})
    result = run_module("job", params)
    assert result.get("failed") is True
    msg = result["msg"]
    assert "Job %s/broken failed" % namespace in msg
    assert "exit code 3" in msg
    failed_pods = [p for p in result["pods"] if p["phase"] == "Failed"]
    assert failed_pods and failed_pods[0]["exit_code"] == 3
    assert failed_pods[0]["name"] in msg
    assert_logs_best_effort(failed_pods[0])
    assert result["counts"]["failed"] >= 1
    for line in failed_pods[0]["log"]:
        assert line in msg
    live = get_job(kubectl, namespace, "broken")
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in live["status"]["conditions"])

    # Same spec: not run again, the recorded failure is reported again.
    again = run_module("job", params)
    assert again.get("failed") is True and again["changed"] is False and "rerun=always" in again["msg"]
    assert get_job(kubectl, namespace, "broken")["metadata"]["uid"] == live["metadata"]["uid"]


def test_changed_spec_recreates_and_rerun_modes(run_module, kubectl, namespace):
    first = run_module("job", job_params(namespace))
    assert first["changed"] and not first.get("failed")
    uid1 = first["uid"]

    changed = run_module("job", job_params(namespace, command=["sh", "-c", "echo v2"]))
    assert not changed.get("failed"), changed.get("msg")
    assert changed["changed"] is True and changed["recreated"] is True and changed["status"] == "Complete"
    live = get_job(kubectl, namespace, "load")
    assert live["metadata"]["uid"] == changed["uid"] != uid1

    never = run_module("job", job_params(namespace, command=["sh", "-c", "echo v3"], rerun="never"))
    assert never["changed"] is False and never["uid"] == changed["uid"]
    assert "rerun=never" in str(never.get("warnings"))  # plain strings or 2.19 warning summaries

    always = run_module("job", job_params(namespace, command=["sh", "-c", "echo v2"], rerun="always"))
    assert always["changed"] is True and always["uid"] not in (uid1, changed["uid"])
    assert get_job(kubectl, namespace, "load")["metadata"]["uid"] == always["uid"]


def test_check_mode_creates_nothing_and_absent_deletes(run_module, kubectl, namespace):
    check = run_module("job", job_params(namespace, name="dry"), check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is True and check["diff"]["after"]["metadata"]["name"] == "dry"
    assert get_job(kubectl, namespace, "dry") is None

    run_module("job", job_params(namespace, name="dry"))
    uid = get_job(kubectl, namespace, "dry")["metadata"]["uid"]
    check = run_module("job", job_params(namespace, name="dry", command=["sh", "-c", "echo other"]), check=True)
    assert check["changed"] is True
    assert get_job(kubectl, namespace, "dry")["metadata"]["uid"] == uid

    absent = run_module("job", {"name": "dry", "namespace": namespace, "state": "absent"}, check=True)
    assert absent["changed"] is True and get_job(kubectl, namespace, "dry") is not None
    absent = run_module("job", {"name": "dry", "namespace": namespace, "state": "absent"})
    assert absent["changed"] is True
    assert get_job(kubectl, namespace, "dry") is None
    pods = kubectl("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=dry", "-o", "json")
    assert pods["items"] == []
    assert run_module("job", {"name": "dry", "namespace": namespace, "state": "absent"})["changed"] is False


def test_script_from_configmap_and_env_from_secret(run_module, kubectl, namespace):
    kubectl("create", "configmap", "scripts", "-n", namespace, "--from-literal=load.sh=echo hi")
    kubectl("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=PGPASSWORD=pw")
    result = run_module("job", {"name": "scripted", "namespace": namespace, "image": "busybox:1.36",
                                "script_configmap": {"name": "scripts", "key": "load.sh"},
                                "env_from_secrets": ["creds"], "env": {"MODE": "full"}, "wait_timeout": 120})
    assert not result.get("failed"), result.get("msg")
    spec = get_job(kubectl, namespace, "scripted")["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"] == ["/bin/sh", "/opt/job/load.sh"]
    assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert spec["volumes"][0]["configMap"]["name"] == "scripts"


@pytest.mark.parametrize("bad", [{"completion_mode": "Indexed"}, {"image": None}])
def test_bad_input_fails_before_writing(run_module, kubectl, namespace, bad):
    result = run_module("job", job_params(namespace, name="bad", **bad))
    assert result.get("failed") is True and result.get("field")
    assert get_job(kubectl, namespace, "bad") is None


def test_timeout_reports_unfinished_pods(run_module, namespace):
    # kwok keeps a pod with this annotation Running and never lets it finish.
    result = run_module("job", job_params(namespace, name="slow", wait_timeout=5,
                                          pod_annotations={"datastore.test/unready": "true"}))
    assert result.get("failed") is True
    assert "not finished after 5s" in result["msg"] and "phase Running" in result["msg"]
    assert result["status"] == "Running" and result["counts"]["active"] == 1
