"""The local environment is made of real servers: each test proves one part does its real job.

These tests use only upstream clients (kubernetes, hvac, psycopg2, dnspython, the helm
binary), never the collection, so a broken module cannot hide a broken environment.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest
from testlib.charts import write_chart

pytestmark = pytest.mark.localenv


def _wait(predicate, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %ss" % timeout)


def _sts(name, ns, replicas=3, annotations=None):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "db", "image": "example/db:1",
                                         "ports": [{"name": "client", "containerPort": 9042}]}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }


def _headless(name, ns):
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": "None", "selector": {"app": name},
                 "ports": [{"name": "client", "port": 9042, "protocol": "TCP"}]},
    }


def _job(name, ns, annotations=None, backoff=0):
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
        "spec": {"backoffLimit": backoff, "template": {
            "metadata": {"annotations": annotations or {}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "load", "image": "example/load:1"}]}}},
    }


@pytest.fixture
def dyn(kube):
    from kubernetes import dynamic

    return dynamic.DynamicClient(kube)


def _apply(dyn, obj):
    api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return api.server_side_apply(body=obj, namespace=obj["metadata"].get("namespace"),
                                 field_manager="localenv-test")


def test_api_server_reports_its_real_version(kube):
    from kubernetes import client

    info = client.VersionApi(kube).get_code()
    assert info.git_version.startswith("v1.")
    assert info.git_version != "v0.0.0-master+$Format:%H$"


def test_server_side_apply_and_immutable_volume_claim_templates(dyn, namespace):
    from kubernetes.dynamic.exceptions import DynamicApiError

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": namespace},
          "data": {"k": "v"}}
    created = _apply(dyn, cm)
    assert created.metadata.managedFields[0].manager == "localenv-test"
    again = _apply(dyn, cm)
    assert again.metadata.resourceVersion == created.metadata.resourceVersion, "a no-op apply must not write"
    _apply(dyn, _sts("ssa", namespace, replicas=1))
    changed = _sts("ssa", namespace, replicas=1)
    changed["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "2Gi"
    with pytest.raises(DynamicApiError) as err:
        _apply(dyn, changed)
    assert err.value.status == 422
    assert "updates to statefulset spec for fields other than" in str(err.value.body)


def test_ordered_statefulset_pod0_ready_before_pod1_and_pvcs_bound(dyn, kube, namespace):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _apply(dyn, _headless("db", namespace))
    _apply(dyn, _sts("db", namespace, replicas=3))

    def all_ready():
        pods = core.list_namespaced_pod(namespace, label_selector="app=db").items
        ready = [p for p in pods if any(c.type == "Ready" and c.status == "True"
                                        for c in (p.status.conditions or []))]
        return pods if len(ready) == 3 else None

    pods = {p.metadata.name: p for p in _wait(all_ready, timeout=60)}
    ready0 = next(c.last_transition_time for c in pods["db-0"].status.conditions if c.type == "Ready")
    assert ready0 <= pods["db-1"].metadata.creation_timestamp, "db-1 was created before db-0 was Ready"
    pvcs = core.list_namespaced_persistent_volume_claim(namespace).items
    assert sorted(p.metadata.name for p in pvcs) == ["data-db-0", "data-db-1", "data-db-2"]
    _wait(lambda: all(p.status.phase == "Bound"
                      for p in core.list_namespaced_persistent_volume_claim(namespace).items), timeout=30)


def test_job_completes(dyn, kube, namespace):
    from kubernetes import client

    _apply(dyn, _job("load", namespace))
    batch = client.BatchV1Api(kube)

    def succeeded():
        job = batch.read_namespaced_job("load", namespace)
        return job if (job.status.succeeded or 0) >= 1 else None

    job = _wait(succeeded, timeout=60)
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)
    core = client.CoreV1Api(kube)
    pod = core.list_namespaced_pod(namespace, label_selector="job-name=load").items[0]
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert "localenv: done" in log


def test_job_marked_to_fail_fails_with_the_chosen_exit_code(dyn, kube, namespace):
    from kubernetes import client

    _apply(dyn, _job("broken", namespace, annotations={"datastore.test/fail-exit-code": "7"}))
    batch = client.BatchV1Api(kube)

    def failed():
        job = batch.read_namespaced_job("broken", namespace)
        return job if any(c.type == "Failed" and c.status == "True" for c in (job.status.conditions or [])) else None

    job = _wait(failed, timeout=60)
    assert job.status.failed == 1
    pod = client.CoreV1Api(kube).list_namespaced_pod(namespace, label_selector="job-name=broken").items[0]
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 7


def test_daemonset_gets_one_pod_per_node(dyn, kube, namespace):
    from kubernetes import client

    nodes = client.CoreV1Api(kube).list_node(label_selector="type=kwok").items
    assert len(nodes) >= 3
    _apply(dyn, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "agent", "image": "example/agent:1"}]}}},
    })
    core = client.CoreV1Api(kube)

    def one_per_node():
        pods = core.list_namespaced_pod(namespace, label_selector="app=agent").items
        return pods if len(pods) == len(nodes) and all(p.status.phase == "Running" for p in pods) else None

    pods = _wait(one_per_node, timeout=60)
    assert sorted(p.spec.node_name for p in pods) == sorted(n.metadata.name for n in nodes)


def test_pod_a_record_and_srv_record_resolve_through_coredns(dyn, kube, namespace, localenv):
    import dns.resolver
    from kubernetes import client

    _apply(dyn, _headless("dns", namespace))
    _apply(dyn, _sts("dns", namespace, replicas=2))
    core = client.CoreV1Api(kube)

    def ready_ip():
        pods = {p.metadata.name: p for p in core.list_namespaced_pod(namespace, label_selector="app=dns").items}
        pod = pods.get("dns-1")
        if pod and any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])):
            return pod.status.pod_ip
        return None

    pod_ip = _wait(ready_ip, timeout=60)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [localenv["DNS_SERVER"]]
    resolver.port = int(localenv["DNS_PORT"])

    fqdn = "dns-1.dns.%s.svc.cluster.local" % namespace

    def answers(name, rtype):
        try:
            return [r.to_text() for r in resolver.resolve(name, rtype)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None

    assert _wait(lambda: answers(fqdn, "A"), timeout=30) == [pod_ip]

    def both_srv():
        found = answers("_client._tcp.dns.%s.svc.cluster.local" % namespace, "SRV")
        return found if found and len(found) == 2 else None

    srv = _wait(both_srv, timeout=30)
    targets = sorted(r.split()[-1] for r in srv)
    assert targets == ["dns-0.dns.%s.svc.cluster.local." % namespace, fqdn + "."]
    assert all(r.split()[2] == "9042" for r in srv)


def _pg_login(localenv, user, password):
    import psycopg2

    conn = psycopg2.connect(host=localenv["PGHOST"], port=localenv["PGPORT"], dbname=localenv["PGDATABASE"],
                            user=user, password=password, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_openbao_issues_postgres_credentials_that_stop_working_when_revoked(vault, localenv):
    import psycopg2

    mount = "db-" + uuid.uuid4().hex[:8]
    vault.sys.enable_secrets_engine("database", path=mount)
    try:
        vault.secrets.database.configure(
            name="app", plugin_name="postgresql-database-plugin", mount_point=mount,
            connection_url="postgresql://{{username}}:{{password}}@%s:%s/%s?sslmode=disable"
                           % (localenv["PGHOST"], localenv["PGPORT"], localenv["PGDATABASE"]),
            username=localenv["PGUSER"], password=localenv["PGPASSWORD"], allowed_roles=["app"])
        vault.secrets.database.create_role(
            name="app", db_name="app", mount_point=mount, default_ttl="1h", max_ttl="2h",
            creation_statements=["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                                 "VALID UNTIL '{{expiration}}';"])
        creds = vault.secrets.database.generate_credentials(name="app", mount_point=mount)
        user, password = creds["data"]["username"], creds["data"]["password"]
        assert _pg_login(localenv, user, password) == user
        vault.sys.revoke_lease(creds["lease_id"])
        with pytest.raises(psycopg2.OperationalError):
            _pg_login(localenv, user, password)
    finally:
        vault.sys.disable_secrets_engine(mount)


def test_kubernetes_auth_login_with_a_service_account_token(vault, kube, namespace, localenv):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="app")))
    token = core.create_namespaced_service_account_token("app", namespace, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["https://kubernetes.default.svc.cluster.local"],
                                       expiration_seconds=600))).status.token
    mount = localenv["VAULT_K8S_AUTH_MOUNT"]
    role = "r-" + namespace
    vault.write("auth/%s/role/%s" % (mount, role), bound_service_account_names=["app"],
                bound_service_account_namespaces=[namespace], token_policies=["default"], token_ttl=300)
    try:
        import hvac

        login = hvac.Client(url=localenv["VAULT_ADDR"])
        resp = login.auth.kubernetes.login(role=role, jwt=token, mount_point=mount)
        assert resp["auth"]["metadata"]["service_account_namespace"] == namespace
        assert login.is_authenticated()
        with pytest.raises(hvac.exceptions.Forbidden):
            hvac.Client(url=localenv["VAULT_ADDR"]).auth.kubernetes.login(role=role, jwt=token + "x",
                                                                          mount_point=mount)
    finally:
        vault.delete("auth/%s/role/%s" % (mount, role))


@pytest.mark.parametrize("helm_var", ["HELM", "HELM3"])
def test_helm_install_of_a_local_chart_creates_its_objects(helm_var, kube, namespace, localenv, tmp_path):
    from kubernetes import client

    chart = write_chart(tmp_path / "smoke", name="smoke")
    env = dict(os.environ, KUBECONFIG=localenv["KUBECONFIG"])
    out = subprocess.run([localenv[helm_var], "install", "smoke", str(chart), "-n", namespace,
                          "--set", "greeting=hi"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    cm = client.CoreV1Api(kube).read_namespaced_config_map("smoke-cm", namespace)
    assert cm.data == {"greeting": "hi"}


def _listening_addresses(pid):
    """Local addresses of the TCP/UDP sockets a process listens on (from /proc)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        with open("/proc/%d/net/%s" % (pid, table)) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[3] == listening and fields[9] in inodes:
                    found.append((table, fields[1].split(":")[0]))
    return found


def test_every_part_listens_on_loopback_only(localenv):
    loopback = {"0100007F", "00000000000000000000000001000000"}
    pids_dir = os.path.join(localenv["LOCALENV_STATE"], "pids")
    pid_files = [(part, os.path.join(pids_dir, part)) for part in sorted(os.listdir(pids_dir))]
    pid_files.append(("postgres", os.path.join(localenv["LOCALENV_STATE"], "pg", "postmaster.pid")))
    checked = 0
    for part, pid_file in pid_files:
        with open(pid_file) as handle:
            pid = int(handle.readline().strip())
        if not os.path.isdir("/proc/%d" % pid):
            continue
        for table, address in _listening_addresses(pid):
            checked += 1
            assert address in loopback, "%s listens on %s address %s" % (part, table, address)
    assert checked >= 8, "too few listening sockets found (%d)" % checked
