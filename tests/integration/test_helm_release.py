"""The helm_release module against the local cluster, with helm 4 (HELM) and helm 3 (HELM3)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import uuid

import pytest

TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
data:
  greeting: {{ .Values.greeting | quote }}
  env: {{ .Values.env | default "none" | quote }}
  replicas: {{ .Values.replicas | default 1 | quote }}
"""
SECRET_TEMPLATE = """apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-secret
stringData:
  password: {{ .Values.password | default "unset" | quote }}
"""


@pytest.fixture(params=["HELM", "HELM3"])
def helm_bin(request, localenv):
    path = localenv.get(request.param)
    if not path:
        pytest.fail("%s is not set by the local environment" % request.param)
    return path


@pytest.fixture
def helm(helm_bin, localenv):
    def _run(*args, check=True):
        proc = subprocess.run([helm_bin, *args, "--kubeconfig", localenv["KUBECONFIG"]], capture_output=True,
                              text=True, check=False, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError("helm %s failed: %s" % (" ".join(args), proc.stderr))
        return proc

    return _run


def make_chart(root, name="tiny", version="0.1.0", template=TEMPLATE, secret=False):
    chart = os.path.join(str(root), name)
    os.makedirs(os.path.join(chart, "templates"), exist_ok=True)
    with open(os.path.join(chart, "Chart.yaml"), "w") as handle:
        handle.write("apiVersion: v2\nname: %s\nversion: %s\nappVersion: \"1.0\"\n" % (name, version))
    with open(os.path.join(chart, "values.yaml"), "w") as handle:
        handle.write("greeting: hello\n")
    with open(os.path.join(chart, "templates", "cm.yaml"), "w") as handle:
        handle.write(template)
    if secret:
        with open(os.path.join(chart, "templates", "secret.yaml"), "w") as handle:
            handle.write(SECRET_TEMPLATE)
    return chart


def history(helm, name, namespace):
    proc = helm("history", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else []


def configmap(kubectl, namespace, name):
    proc = kubectl("get", "configmap", name, "-n", namespace, "-o", "json", check=False)
    return proc["data"] if isinstance(proc, dict) else None


def release_params(namespace, helm_bin, chart, **extra):
    params = {"name": "app", "namespace": namespace, "chart_ref": chart, "binary_path": helm_bin,
              "wait_timeout": 120}
    params.update(extra)
    return params


def test_local_chart_install_noop_upgrade_check_and_uninstall(run_module, kubectl, namespace, helm, helm_bin,
                                                              tmp_path):
    chart = make_chart(tmp_path)
    params = release_params(namespace, helm_bin, chart, values={"greeting": "hi"})

    first = run_module("helm_release", params)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is True and first["revision"] == 1 and first["status"] == "deployed"
    assert (first["chart"], first["chart_version"], first["app_version"]) == ("tiny", "0.1.0", "1.0")
    assert first["helm_invocations"] == 2  # status, upgrade --install (no atomic: the version is not needed)
    assert configmap(kubectl, namespace, "app-cm")["greeting"] == "hi"

    again = run_module("helm_release", params)
    assert again["changed"] is False and again["revision"] == 1
    assert again["helm_invocations"] == 1  # status only: values and the chart digest decide
    assert len(history(helm, "app", namespace)) == 1

    upgraded = run_module("helm_release", dict(params, values={"greeting": "bonjour"}))
    assert upgraded["changed"] is True and upgraded["revision"] == 2 and upgraded["changes"] == ["values"]
    assert upgraded["helm_invocations"] == 2
    assert configmap(kubectl, namespace, "app-cm")["greeting"] == "bonjour"

    # The template changes, the chart version does not: the content digest notices.
    make_chart(tmp_path, template=TEMPLATE.replace("greeting:", "salutation:"))
    content = run_module("helm_release", dict(params, values={"greeting": "bonjour"}))
    assert content["changed"] is True and content["revision"] == 3 and content["changes"] == ["chart content"]
    assert configmap(kubectl, namespace, "app-cm")["salutation"] == "bonjour"

    check = run_module("helm_release", dict(params, values={"greeting": "ciao"}), check=True, diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is True
    assert 'salutation: "bonjour"' in check["diff"]["before"] and 'salutation: "ciao"' in check["diff"]["after"]
    assert len(history(helm, "app", namespace)) == 3
    assert configmap(kubectl, namespace, "app-cm")["salutation"] == "bonjour"

    gone = run_module("helm_release", {"name": "app", "namespace": namespace, "state": "absent",
                                       "binary_path": helm_bin})
    assert gone["changed"] is True
    assert history(helm, "app", namespace) == []
    assert configmap(kubectl, namespace, "app-cm") is None
    assert run_module("helm_release", {"name": "app", "namespace": namespace, "state": "absent",
                                       "binary_path": helm_bin})["changed"] is False


def test_values_files_per_environment_and_sensitive_values(run_module, kubectl, namespace, helm, helm_bin,
                                                           tmp_path):
    chart = make_chart(tmp_path, secret=True)
    (tmp_path / "common.yaml").write_text("greeting: hello\nreplicas: 1\n")
    (tmp_path / "staging.yaml").write_text("env: staging\n")
    (tmp_path / "prod.yaml").write_text("env: prod\nreplicas: 3\n")
    password = "pw-" + uuid.uuid4().hex

    def params(env):
        return release_params(namespace, helm_bin, chart,
                              values_files=[str(tmp_path / "common.yaml"), str(tmp_path / ("%s.yaml" % env))],
                              set_values=[{"path": "password", "value": password}], sensitive_values=["password"])

    staging = run_module("helm_release", params("staging"), diff=True)
    assert not staging.get("failed"), staging.get("msg")
    assert configmap(kubectl, namespace, "app-cm") == {"greeting": "hello", "env": "staging", "replicas": "1"}
    assert staging["chart_values"]["password"] == "<masked>"
    assert password not in staging["_stdout"]

    assert run_module("helm_release", params("staging"))["changed"] is False
    prod = run_module("helm_release", params("prod"), diff=True)
    assert prod["changed"] is True and prod["revision"] == 2
    assert configmap(kubectl, namespace, "app-cm") == {"greeting": "hello", "env": "prod", "replicas": "3"}
    assert password not in prod["_stdout"]
    assert password not in base64.b64encode(prod["_stdout"].encode()).decode()
    secret = kubectl("get", "secret", "app-secret", "-n", namespace, "-o", "json")
    assert base64.b64decode(secret["data"]["password"]).decode() == password


def test_chart_from_repository_and_oci(run_module, kubectl, namespace, helm, helm_bin, localenv, tmp_path):
    # A private sub-directory of the served repository, so concurrent tests do not share an index.
    sub = uuid.uuid4().hex[:10]
    repo_dir = os.path.join(localenv["CHART_REPO_DIR"], sub)
    os.makedirs(repo_dir)
    repo_url = localenv["CHART_REPO_URL"].rstrip("/") + "/" + sub
    for version in ("0.1.0", "0.2.0"):
        helm("package", make_chart(tmp_path / version, version=version), "-d", repo_dir)
    helm("repo", "index", repo_dir, "--url", repo_url)

    params = release_params(namespace, helm_bin, "tiny", chart_repo_url=repo_url, chart_version="0.1.0",
                            values={"greeting": "from-repo"})
    first = run_module("helm_release", params)
    assert not first.get("failed"), first.get("msg")
    assert first["chart_version"] == "0.1.0" and configmap(kubectl, namespace, "app-cm")["greeting"] == "from-repo"
    noop = run_module("helm_release", params)
    assert noop["changed"] is False and noop["helm_invocations"] == 2  # status, get metadata

    latest = run_module("helm_release", dict(params, chart_version=None))
    assert latest["changed"] is True and latest["chart_version"] == "0.2.0" and latest["revision"] == 2
    noop = run_module("helm_release", dict(params, chart_version=None))
    assert noop["changed"] is False and noop["helm_invocations"] == 3  # + show chart for the latest version

    registry = localenv.get("OCI_REGISTRY")
    if not registry:
        return
    oci_ref = "oci://%s/%s" % (registry, sub)
    helm("push", os.path.join(repo_dir, "tiny-0.2.0.tgz"), oci_ref, "--plain-http")
    oci = release_params(namespace, helm_bin, oci_ref + "/tiny", chart_version="0.2.0", plain_http=True,
                         name="app-oci", values={"greeting": "from-oci"})
    first = run_module("helm_release", oci)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is True and configmap(kubectl, namespace, "app-oci-cm")["greeting"] == "from-oci"
    again = run_module("helm_release", oci)
    assert again["changed"] is False and again["helm_invocations"] <= 2
    assert len(history(helm, "app-oci", namespace)) == 1


def set_release_status(kubectl, namespace, name, revision, status):
    """Rewrite a release's stored state, as an interrupted helm upgrade leaves it."""
    secret_name = "sh.helm.release.v1.%s.v%d" % (name, revision)
    secret = kubectl("get", "secret", secret_name, "-n", namespace, "-o", "json")
    raw = gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"])))
    release = json.loads(raw)
    release["info"]["status"] = status
    encoded = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode()))).decode()
    patch = {"metadata": {"labels": {"status": status}}, "data": {"release": encoded}}
    kubectl("patch", "secret", secret_name, "-n", namespace, "--type", "merge", "-p", json.dumps(patch))


def test_pending_release_is_detected_and_recovered(run_module, kubectl, namespace, helm, helm_bin, tmp_path):
    chart = make_chart(tmp_path)
    params = release_params(namespace, helm_bin, chart, values={"greeting": "one"})
    assert run_module("helm_release", params)["revision"] == 1
    assert run_module("helm_release", dict(params, values={"greeting": "two"}))["revision"] == 2
    set_release_status(kubectl, namespace, "app", 2, "pending-upgrade")

    stuck = run_module("helm_release", dict(params, values={"greeting": "two"}))
    assert stuck.get("failed") is True
    assert "pending-upgrade" in stuck["msg"] and "on_pending=rollback" in stuck["msg"]
    assert len(history(helm, "app", namespace)) == 2

    recovered = run_module("helm_release", dict(params, values={"greeting": "two"}, on_pending="rollback"))
    assert not recovered.get("failed"), recovered.get("msg")
    assert recovered["changed"] is True and recovered["pending_action"] == "rollback"
    assert recovered["status"] == "deployed"
    # rolled back to revision 1 ("one") as revision 3, then upgraded to "two" as revision 4
    assert recovered["revision"] == 4
    assert configmap(kubectl, namespace, "app-cm")["greeting"] == "two"
    assert run_module("helm_release", dict(params, values={"greeting": "two"}))["changed"] is False

    # A first install left pending cannot be rolled back; reinstall starts over.
    fresh = dict(params, name="fresh")
    assert run_module("helm_release", fresh)["revision"] == 1
    set_release_status(kubectl, namespace, "fresh", 1, "pending-install")
    rollback = run_module("helm_release", dict(fresh, on_pending="rollback"))
    assert rollback.get("failed") is True and "on_pending=reinstall" in rollback["msg"]
    reinstalled = run_module("helm_release", dict(fresh, on_pending="reinstall"))
    assert not reinstalled.get("failed"), reinstalled.get("msg")
    assert reinstalled["pending_action"] == "reinstall" and reinstalled["status"] == "deployed"
    assert [h["status"] for h in history(helm, "fresh", namespace)] == ["deployed"]


# -- failed releases, waits that fail, charts that draw random values ------------------------
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "charts")


def revisions(helm, name, namespace):
    """``[(revision, status), ...]`` as ``helm history`` tells them."""
    return [(h["revision"], h["status"]) for h in history(helm, name, namespace)]


def statefulset(kubectl, namespace, name):
    return kubectl("get", "statefulset", name, "-n", namespace, "-o", "json")


def ready_pods(kubectl, namespace, selector):
    pods = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")["items"]
    return sorted(p["metadata"]["name"] for p in pods
                  if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))


def db_params(namespace, helm_bin, **extra):
    # The failing waits are short: the pods they wait for can never become ready.
    return release_params(namespace, helm_bin, os.path.join(FIXTURES, "anti-affinity-db"), name="db",
                          wait_timeout=10, **extra)


def test_failed_install_is_fixed_by_a_corrected_run(run_module, kubectl, namespace, helm, helm_bin):
    # No node carries this label: the scheduler leaves the pod Pending and helm's wait fails.
    params = db_params(namespace, helm_bin, values={"nodeSelector": {"datastore.test/pool": "nowhere"}})
    failed = run_module("helm_release", params)
    assert failed.get("failed") is True
    assert revisions(helm, "db", namespace) == [(1, "failed")]
    assert failed["release_status"] == "failed" and failed["revision"] == 1
    assert len(failed["not_ready"]) == 1, failed["not_ready"]
    line = failed["not_ready"][0]
    assert line.startswith("pod db-db-0: Unschedulable: 0/") and "didn't match Pod's node affinity/selector" in line
    assert line in failed["msg"] and "is now failed at revision 1" in failed["msg"]

    fixed = run_module("helm_release", dict(params, values={}, wait_timeout=120))
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["changed"] is True and fixed["changes"][0] == "failed release (revision 1)"
    assert "pending_action" not in fixed
    assert (fixed["revision"], fixed["status"]) == (2, "deployed")
    assert revisions(helm, "db", namespace) == [(1, "superseded"), (2, "deployed")]
    assert ready_pods(kubectl, namespace, "app.kubernetes.io/instance=db") == ["db-db-0"]
    assert run_module("helm_release", dict(params, values={}))["changed"] is False


def test_failed_upgrade_is_fixed_by_a_corrected_run(run_module, kubectl, namespace, helm, helm_bin):
    params = db_params(namespace, helm_bin, values={"replicas": 1})
    first = run_module("helm_release", params)
    assert not first.get("failed"), first.get("msg")

    # Three nodes, four pods that may not share one: the fourth stays Pending.
    failed = run_module("helm_release", dict(params, values={"replicas": 4}))
    assert failed.get("failed") is True
    assert revisions(helm, "db", namespace) == [(1, "deployed"), (2, "failed")]
    assert failed["release_status"] == "failed" and failed["revision"] == 2
    assert len(failed["not_ready"]) == 1, failed["not_ready"]
    line = failed["not_ready"][0]
    assert line.startswith("pod db-db-3: Unschedulable: 0/") and "didn't match pod anti-affinity rules" in line
    assert line in failed["msg"]
    assert ready_pods(kubectl, namespace, "app.kubernetes.io/instance=db") == ["db-db-0", "db-db-1", "db-db-2"]

    # Check mode reports the upgrade of the failed release and writes nothing.
    check = run_module("helm_release", dict(params, values={"replicas": 3}, wait_timeout=120), check=True,
                       diff=True)
    assert not check.get("failed"), check.get("msg")
    assert check["changed"] is True and check["changes"] == ["failed release (revision 2)", "values"]
    assert "replicas: 4" in check["diff"]["before"] and "replicas: 3" in check["diff"]["after"]
    assert revisions(helm, "db", namespace) == [(1, "deployed"), (2, "failed")]
    assert statefulset(kubectl, namespace, "db-db")["spec"]["replicas"] == 4

    fixed = run_module("helm_release", dict(params, values={"replicas": 3}, wait_timeout=120))
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["changed"] is True and (fixed["revision"], fixed["status"]) == (3, "deployed")
    assert revisions(helm, "db", namespace) == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    sts = statefulset(kubectl, namespace, "db-db")
    assert sts["spec"]["replicas"] == 3 and sts["status"].get("readyReplicas") == 3
    assert run_module("helm_release", dict(params, values={"replicas": 3}))["changed"] is False


DEPLOYMENT_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 2
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
      annotations: {{ .Values.podAnnotations | toJson }}
    spec:
      containers:
        - name: web
          image: registry.example/web:1
"""


def test_failed_wait_of_a_deployment_names_its_pods(run_module, namespace, helm, helm_bin, tmp_path):
    chart = make_chart(tmp_path, name="web", template=DEPLOYMENT_TEMPLATE)
    # kwok keeps these pods Running but never Ready and reports the failing probe as a kubelet does.
    failed = run_module("helm_release", release_params(namespace, helm_bin, chart, name="web", wait_timeout=10,
                                                       values={"podAnnotations": {"datastore.test/unready": "true"}}))
    assert failed.get("failed") is True and failed["release_status"] == "failed"
    assert len(failed["not_ready"]) == 2, failed["not_ready"]
    for line in failed["not_ready"]:
        # Found through the Deployment's ReplicaSet: the pods are named after it.
        assert line.startswith("pod web-web-")
        assert "container web running, not ready; Unhealthy: Readiness probe failed" in line
    assert revisions(helm, "web", namespace) == [(1, "failed")]


def secret_data(kubectl, namespace, name):
    return kubectl("get", "secret", name, "-n", namespace, "-o", "json")["data"]


def test_noop_run_never_renders_random_values_again(run_module, kubectl, namespace, helm, helm_bin, localenv):
    chart = os.path.join(FIXTURES, "random-secrets")
    # The same chart from a directory and from a chart repository: the two ways a run decides a no-op.
    sub = uuid.uuid4().hex[:10]
    repo_dir = os.path.join(localenv["CHART_REPO_DIR"], sub)
    os.makedirs(repo_dir)
    repo_url = localenv["CHART_REPO_URL"].rstrip("/") + "/" + sub
    helm("package", chart, "-d", repo_dir)
    helm("repo", "index", repo_dir, "--url", repo_url)
    releases = {"local": release_params(namespace, helm_bin, chart, name="local"),
                "repo": release_params(namespace, helm_bin, "random-secrets", name="repo", chart_repo_url=repo_url,
                                       chart_version="0.1.0")}
    for name, params in releases.items():
        first = run_module("helm_release", params)
        assert not first.get("failed"), first.get("msg")
        before = secret_data(kubectl, namespace, "%s-random" % name)
        assert set(before) == {"password", "ca.crt", "ca.key"}

        for check in (True, False):
            again = run_module("helm_release", params, check=check, diff=True)
            assert not again.get("failed"), again.get("msg")
            assert again["changed"] is False and again["revision"] == 1
        assert revisions(helm, name, namespace) == [(1, "deployed")]
        assert secret_data(kubectl, namespace, "%s-random" % name) == before

        # The chart really draws new values on each render: an upgrade rotates them.
        changed = run_module("helm_release", dict(params, values={"greeting": "bonjour"}))
        assert changed["changed"] is True and changed["revision"] == 2
        after = secret_data(kubectl, namespace, "%s-random" % name)
        assert after["password"] != before["password"] and after["ca.crt"] != before["ca.crt"]
