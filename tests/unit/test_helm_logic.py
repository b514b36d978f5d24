"""Unit tests for the helm runner: argv building, value comparison, pending detection (no cluster, no helm)."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _helm, _helm_values
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import HelmError, InvalidInput

# Trimmed from real `helm status -o json` / `helm get metadata -o json` output (helm 4.1 and 3.17).
STATUS_V4 = {
    "name": "r1", "namespace": "apps", "version": 2, "apply_method": "ssa",
    "info": {"first_deployed": "2026-01-01T00:00:00Z", "last_deployed": "2026-01-01T00:01:00Z",
             "description": "Upgrade complete", "status": "deployed"},
    "config": {"f": 1.5, "greeting": "hi", "n": 1000000},
    "manifest": "---\n# Source: tiny/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r1-cm\n"
                "data:\n  greeting: \"hi\"\n",
}
STATUS_V3_PENDING = {
    "name": "r1", "namespace": "apps", "version": 3,
    "info": {"first_deployed": "2026-01-01T00:00:00Z", "last_deployed": "2026-01-01T00:02:00Z", "deleted": "",
             "description": "Preparing upgrade", "status": "pending-upgrade"},
    "config": {"greeting": "hi"}, "manifest": "",
}
METADATA_V4 = {"name": "r1", "chart": "tiny", "version": "0.1.0", "appVersion": "1.0",
               "labels": {"name": "r1", "owner": "helm", "status": "deployed", "version": "2"},
               "namespace": "apps", "revision": 2, "status": "deployed", "deployedAt": "2026-01-01T00:01:00Z",
               "applyMethod": "ssa"}
UPGRADE_OUT = dict(STATUS_V4, version=3,
                   chart={"metadata": {"name": "tiny", "version": "0.2.0", "appVersion": "1.1"}},
                   info=dict(STATUS_V4["info"], description="x"))


class FakeRun:
    """Stands in for module.run_command; answers by helm subcommand."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, env):
        self.calls.append(argv)
        key = argv[1] if argv[1] != "get" else "get " + argv[2]
        answer = self.answers[key]
        if callable(answer):
            answer = answer(argv)
        if isinstance(answer, tuple):
            return answer
        return 0, answer if isinstance(answer, str) else json.dumps(answer), ""


def make_chart(tmp_path, version="0.1.0", greeting="hello"):
    root = tmp_path / "tiny"
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: %s\nappVersion: '1.0'\n" % version)
    (root / "values.yaml").write_text("greeting: %s\n" % greeting)
    (root / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    return str(root)


def params(**extra):
    out = {"name": "r1", "namespace": "apps", "state": "present", "chart_ref": None, "chart_repo_url": None,
           "chart_version": None, "values": {}, "values_files": [], "set_values": [], "sensitive_values": [],
           "create_namespace": False, "atomic": False, "take_ownership": False, "on_pending": "fail",
           "plain_http": False, "wait": True, "wait_timeout": 120}
    out.update(extra)
    return out


# -- values ---------------------------------------------------------------------------
def test_parse_path():
    assert _helm_values.parse_path("a.b\\.c[0].d") == ["a", "b.c", 0, "d"]
    assert _helm_values.parse_path("list[2]") == ["list", 2]
    with pytest.raises(InvalidInput):
        _helm_values.parse_path("a..b")
    with pytest.raises(InvalidInput):
        _helm_values.parse_path("a[x]")


def test_merge_order_files_then_values_then_set(tmp_path):
    common = tmp_path / "common.yaml"
    common.write_text("image: {repo: app, tag: '1'}\nreplicas: 1\nwhen: 2024-01-01\n")
    prod = tmp_path / "prod.yaml"
    prod.write_text("replicas: 3\nimage: {tag: '2'}\n")
    merged = _helm_values.merged_values(params(
        values_files=[str(common), str(prod)], values={"image": {"pullPolicy": "Always"}},
        set_values=[{"path": "image.tag", "value": 3, "value_type": "string"},
                    {"path": "servers[1].port", "value": 5432, "value_type": "raw"},
                    {"path": "extra", "value": '{"a": [1, 2]}', "value_type": "json"}]))
    assert merged == {"image": {"repo": "app", "tag": "3", "pullPolicy": "Always"}, "replicas": 3,
                      "when": "2024-01-01", "servers": [None, {"port": 5432}], "extra": {"a": [1, 2]}}


def test_values_equal_normalises_numbers():
    assert _helm_values.values_equal({"n": 1000000.0, "f": 1.5}, {"n": 1000000, "f": 1.5})
    assert _helm_values.values_equal(None, {})
    assert not _helm_values.values_equal({"a": None}, {})
    assert not _helm_values.values_equal({"a": "1"}, {"a": 1})


def test_sensitive_values_are_masked_everywhere():
    values = {"auth": {"password": "s3cret-pw", "user": "app"}, "list": [{"token": "tok-123"}]}
    paths = ["auth.password", "list[0].token"]
    expected = {"auth": {"password": "<masked>", "user": "app"}, "list": [{"token": "<masked>"}]}
    assert _helm_values.mask_values(values, paths) == expected
    secrets = _helm_values.sensitive_leaves(values, paths)
    assert set(secrets) == {"s3cret-pw", "tok-123"}
    manifest = ("---\n# Source: c/templates/s.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
                "data:\n  pw: czNjcmV0LXB3\n---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\n"
                "metadata:\n  name: c\ndata:\n  url: postgres://app:s3cret-pw@db\n")
    masked = _helm_values.mask_manifest(manifest, secrets)
    assert "s3cret-pw" not in masked and "czNjcmV0LXB3" not in masked
    assert "# Source: c/templates/s.yaml" in masked and "pw: <masked>" in masked
    assert "postgres://app:<masked>@db" in masked


# -- charts and argv ----------------------------------------------------------------------
def test_chart_kinds_and_digest(tmp_path):
    path = make_chart(tmp_path)
    chart = _helm.Chart(params(chart_ref=path))
    assert (chart.kind, chart.name, chart.version) == ("dir", "tiny", "0.1.0")
    digest = chart.digest
    assert _helm.Chart(params(chart_ref=path)).digest == digest
    (tmp_path / "tiny" / "templates" / "cm.yaml").write_text("kind: ConfigMap # changed\n")
    assert _helm.Chart(params(chart_ref=path)).digest != digest
    # .helmignore'd files do not count
    (tmp_path / "tiny" / ".helmignore").write_text("*.bak\n")
    before = _helm.Chart(params(chart_ref=path)).digest
    (tmp_path / "tiny" / "notes.bak").write_text("x")
    assert _helm.Chart(params(chart_ref=path)).digest == before

    archive = tmp_path / "tiny-0.1.0.tgz"
    with tarfile.open(str(archive), "w:gz") as tar:
        tar.add(path, arcname="tiny")
    chart = _helm.Chart(params(chart_ref=str(archive)))
    assert (chart.kind, chart.name, chart.version) == ("archive", "tiny", "0.1.0")

    assert _helm.Chart(params(chart_ref="oci://reg:5000/charts/tiny")).name == "tiny"
    assert _helm.Chart(params(chart_ref="tiny", chart_repo_url="http://x")).kind == "repo"
    with pytest.raises(InvalidInput):
        _helm.Chart(params(chart_ref=path, chart_version="9.9.9"))


def test_upgrade_argv_for_v4_and_v3(tmp_path):
    chart = _helm.Chart(params(chart_ref="tiny", chart_repo_url="http://127.0.0.1:1/charts", chart_version="0.2.0"))
    p = params(atomic=True, take_ownership=True, create_namespace=True)
    v4 = _helm.upgrade_args("r1", "apps", chart, p, lambda: (4, 1, 4), "/tmp/v.json")
    assert v4[:10] == ["upgrade", "r1", "tiny", "--install", "-n", "apps", "-o", "json", "--reset-values", "-f"]
    for flag in ("--rollback-on-failure", "--wait", "--take-ownership", "--create-namespace"):
        assert flag in v4
    assert v4[v4.index("--repo") + 1] == "http://127.0.0.1:1/charts"
    assert v4[v4.index("--version") + 1] == "0.2.0"
    assert v4[v4.index("--timeout") + 1] == "120s"
    v3 = _helm.upgrade_args("r1", "apps", chart, p, lambda: (3, 17, 2), "/tmp/v.json", dry_run=True)
    assert "--atomic" in v3 and "--wait" in v3 and "--dry-run=server" in v3 and "--rollback-on-failure" not in v3
    with pytest.raises(InvalidInput) as err:
        _helm.upgrade_args("r1", "apps", chart, p, lambda: (3, 16, 0), "/tmp/v.json")
    assert err.value.field == "take_ownership"
    local = _helm.Chart(params(chart_ref=make_chart(tmp_path)))
    args = _helm.upgrade_args("r1", "apps", local, params(wait=False), lambda: (4, 0, 0), "/tmp/v.json")
    assert args[args.index("--description") + 1] == _helm.DESCRIPTION_PREFIX + local.digest
    assert "--version" not in args and not any(a.startswith("--wait") for a in args)


def test_plain_upgrade_does_not_ask_for_the_helm_version(tmp_path):
    local = _helm.Chart(params(chart_ref=make_chart(tmp_path)))
    asked = []

    def version():
        asked.append(True)
        return (4, 1, 4)

    args = _helm.upgrade_args("r1", "apps", local, params(wait=True), version, "/tmp/v.json")
    assert "--wait" in args and asked == []
    args = _helm.upgrade_args("r1", "apps", local, params(atomic=True), version, "/tmp/v.json")
    assert "--rollback-on-failure" in args and asked == [True]


def test_connection_args():
    args, env, temps = _helm.connection_args({"kubeconfig": "/k/config", "context": "prod", "host": "https://h:6443",
                                              "api_key": "tok", "ca_cert": "/ca.crt", "validate_certs": False,
                                              "impersonate_user": "u", "impersonate_groups": ["g1", "g2"]})
    assert args == ["--kubeconfig", "/k/config", "--kube-context", "prod", "--kube-apiserver", "https://h:6443",
                    "--kube-ca-file", "/ca.crt", "--kube-insecure-skip-tls-verify",
                    "--kube-as-user", "u", "--kube-as-group", "g1", "--kube-as-group", "g2"]
    assert "tok" not in args, "a bearer token must not be on helm's command line"
    assert env == {"HELM_KUBETOKEN": "tok"} and temps == []
    args, env, temps = _helm.connection_args({"kubeconfig": {"apiVersion": "v1"}})
    try:
        assert args == ["--kubeconfig", temps[0]] and oct(os.stat(temps[0]).st_mode & 0o777) == "0o600"
    finally:
        os.unlink(temps[0])
    assert _helm.connection_args({"kubeconfig": ["/a", "/b"]})[1] == {"KUBECONFIG": "/a" + os.pathsep + "/b"}
    with pytest.raises(InvalidInput):
        _helm.connection_args({"client_cert": "/c.pem"})


def test_parse_version_and_json_output():
    assert _helm.parse_version("v4.1.4") == (4, 1, 4)
    assert _helm.parse_version("v3.17.2+gcc0bbbd") == (3, 17, 2)
    assert _helm.parse_json_output('Release "r1" does not exist. Installing it now.\n{"a": 1}') == {"a": 1}


# -- decisions --------------------------------------------------------------------------------
def test_pending_detection():
    assert _helm.pending_state(STATUS_V3_PENDING) == "pending-upgrade"
    assert _helm.pending_state(STATUS_V4) is None
    for state in ("pending-install", "pending-rollback", "uninstalling"):
        assert _helm.pending_state({"info": {"status": state}}) == state
    # helm upgrades a failed release: it is no interrupted operation
    assert _helm.pending_state({"info": {"status": "failed"}}) is None


STATUS_FAILED = dict(STATUS_V4, version=3, info=dict(STATUS_V4["info"], status="failed",
                                                     description="Upgrade \"r1\" failed: context deadline exceeded"))
MANIFEST = """---
# Source: tiny/templates/sts.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: r1-db
spec:
  replicas: 4
---
# Source: tiny/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: r1-cm
"""


def test_failed_release_is_upgraded_even_when_the_request_matches_it():
    run = FakeRun({"status": STATUS_FAILED, "get metadata": dict(METADATA_V4, status="failed"),
                   "upgrade": json.dumps(dict(UPGRADE_OUT, version=4))})
    result = _helm.run_release(_helm.Helm("helm", run), params(
        chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0", values=STATUS_V4["config"]))
    assert result["changed"] is True and result["changes"] == ["failed release (revision 3)"]
    assert "pending_action" not in result and result["revision"] == 4
    assert [c[1] for c in run.calls] == ["status", "get", "upgrade"]


def test_failed_local_chart_is_not_blamed_on_its_description(tmp_path):
    chart = make_chart(tmp_path)
    run = FakeRun({"status": dict(STATUS_FAILED, config={"greeting": "hi"}),
                   "upgrade": json.dumps(dict(UPGRADE_OUT, version=4))})
    result = _helm.run_release(_helm.Helm("helm", run), params(chart_ref=chart, values={"greeting": "fixed"}))
    assert result["changes"] == ["failed release (revision 3)", "values"]


def test_check_mode_on_a_failed_release_is_a_dry_run():
    run = FakeRun({"status": STATUS_FAILED, "get metadata": METADATA_V4,
                   "upgrade": json.dumps(dict(UPGRADE_OUT, info=dict(UPGRADE_OUT["info"], status="pending-upgrade")))})
    result = _helm.run_release(_helm.Helm("helm", run), params(
        chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0", values={"greeting": "fixed"}),
        check_mode=True)
    assert result["changed"] is True and result["changes"] == ["failed release (revision 3)", "values"]
    assert "--dry-run=server" in run.calls[-1]


def test_failed_wait_names_the_pods_of_the_release():
    statuses = [STATUS_V4, STATUS_FAILED]
    seen = {}

    def diagnose(objects, namespace):
        seen["objects"], seen["namespace"] = [(o["kind"], o["metadata"]["name"]) for o in objects], namespace
        return ["pod r1-db-3: Unschedulable: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity "
                "rules. password hunter22"]

    run = FakeRun({"status": lambda argv: json.dumps(statuses.pop(0)), "get metadata": METADATA_V4,
                   "upgrade": (1, "", "Error: UPGRADE FAILED: context deadline exceeded"), "get manifest": MANIFEST})
    with pytest.raises(HelmError) as err:
        _helm.run_release(_helm.Helm("helm", run), params(
            chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0", values={"pw": "hunter22"},
            sensitive_values=["pw"]), diagnose=diagnose)
    assert seen == {"objects": [("StatefulSet", "r1-db"), ("ConfigMap", "r1-cm")], "namespace": "apps"}
    msg = err.value.msg
    assert msg.startswith("helm upgrade failed (rc=1): Error: UPGRADE FAILED: context deadline exceeded")
    assert "release apps/r1 is now failed at revision 3" in msg and "anti-affinity" in msg
    assert "hunter22" not in msg and "hunter22" not in json.dumps(err.value.details)
    assert err.value.details["release_status"] == "failed" and len(err.value.details["not_ready"]) == 1

    # Without a wait, helm's error is left as it is.
    run = FakeRun({"status": STATUS_V4, "get metadata": METADATA_V4, "upgrade": (1, "", "Error: boom")})
    with pytest.raises(HelmError) as err:
        _helm.run_release(_helm.Helm("helm", run), params(
            chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0", wait=False), diagnose=diagnose)
    assert err.value.msg == "helm upgrade failed (rc=1): Error: boom" and "not_ready" not in err.value.details


def test_noop_for_repo_chart_uses_two_invocations():
    run = FakeRun({"status": STATUS_V4, "get metadata": METADATA_V4})
    helm = _helm.Helm("helm", run)
    result = _helm.run_release(helm, params(chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0",
                                            values={"greeting": "hi", "n": 1000000, "f": 1.5}))
    assert result["changed"] is False and result["helm_invocations"] == 2
    assert (result["revision"], result["chart"], result["chart_version"], result["app_version"]) == (
        2, "tiny", "0.1.0", "1.0")
    assert "helm_version" not in result  # not needed, so not asked


def test_noop_for_local_chart_uses_one_invocation(tmp_path):
    chart = _helm.Chart(params(chart_ref=make_chart(tmp_path)))
    status = dict(STATUS_V4, info=dict(STATUS_V4["info"], description=_helm.DESCRIPTION_PREFIX + chart.digest))
    run = FakeRun({"status": status})
    result = _helm.run_release(_helm.Helm("helm", run), params(chart_ref=chart.ref, values=status["config"]))
    assert result["changed"] is False and result["helm_invocations"] == 1 and result["chart"] == "tiny"


def test_value_change_upgrades_with_one_values_file(tmp_path):
    seen = {}

    def upgrade(argv):
        with open(argv[argv.index("-f") + 1]) as handle:
            seen["values"] = json.load(handle)
        seen["argv"] = argv
        return json.dumps(UPGRADE_OUT)

    run = FakeRun({"status": STATUS_V4, "get metadata": METADATA_V4, "version": "v3.17.2", "upgrade": upgrade})
    result = _helm.run_release(_helm.Helm("helm", run), params(
        chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0",
        values={"greeting": "new", "pw": "hunter22"}, sensitive_values=["pw"]), diff_mode=True)
    assert result["changed"] and result["changes"] == ["values"]
    assert result["helm_invocations"] == 3 and "helm_version" not in result  # no atomic: version not asked
    assert seen["values"] == {"greeting": "new", "pw": "hunter22"}
    assert "hunter22" not in json.dumps(seen["argv"]) and not os.path.exists(seen["argv"][seen["argv"].index("-f") + 1])
    assert result["chart_values"]["pw"] == "<masked>"
    assert result["revision"] == 3 and "--atomic" not in seen["argv"]
    assert "r1-cm" in result["diff"]["before"]


def test_unpinned_repo_chart_asks_for_latest_version():
    run = FakeRun({"status": STATUS_V4, "get metadata": METADATA_V4,
                   "show": "apiVersion: v2\nname: tiny\nversion: 0.1.0\n"})
    result = _helm.run_release(_helm.Helm("helm", run), params(
        chart_ref="tiny", chart_repo_url="http://x", values=STATUS_V4["config"]))
    assert result["changed"] is False and result["helm_invocations"] == 3
    assert run.calls[1][:4] == ["helm", "show", "chart", "tiny"]


def test_pending_release_fails_clearly_or_is_rolled_back():
    run = FakeRun({"status": STATUS_V3_PENDING})
    with pytest.raises(HelmError) as err:
        _helm.run_release(_helm.Helm("helm", run), params(chart_ref="tiny", chart_repo_url="http://x"))
    assert "pending-upgrade" in err.value.msg and "on_pending=rollback" in err.value.msg

    statuses = [STATUS_V3_PENDING, dict(STATUS_V4, version=4)]
    run = FakeRun({"status": lambda argv: json.dumps(statuses.pop(0)), "version": "v3.17.2", "rollback": "",
                   "get metadata": METADATA_V4})
    result = _helm.run_release(_helm.Helm("helm", run), params(
        chart_ref="tiny", chart_repo_url="http://x", chart_version="0.1.0", values=STATUS_V4["config"],
        on_pending="rollback"))
    assert result["changed"] and result["pending_action"] == "rollback" and result["revision"] == 4
    assert [c[1] for c in run.calls] == ["status", "version", "rollback", "status", "get"]


def test_absent_and_not_found():
    run = FakeRun({"status": (1, "", "Error: release: not found")})
    result = _helm.run_release(_helm.Helm("helm", run), params(state="absent"))
    assert result == {"changed": False, "name": "r1", "namespace": "apps", "helm_invocations": 1}


def test_errors_are_scrubbed():
    run = FakeRun({"status": (1, "", "Error: template: bad value hunter22 in --kube-token abcdefabcdefabcdefabcdef")})
    helm = _helm.Helm("helm", run, env={"HELM_KUBETOKEN": "abcdefabcdefabcdefabcdef"}, secrets=["hunter22"])
    with pytest.raises(HelmError) as err:
        helm.status("r1", "apps")
    assert "hunter22" not in err.value.msg and "abcdefabcdefabcdefabcdef" not in err.value.msg
