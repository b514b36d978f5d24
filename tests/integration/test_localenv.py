"""The local environment is made of real servers: each test proves one part does its real job.

These tests use only upstream clients (kubernetes, hvac, psycopg2, dnspython, the helm
binary), never the collection, so a broken module cannot hide a broken environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest
from testlib.charts import write_chart
from testlib.localenv import node_script
from testlib.realnode import until

pytestmark = pytest.mark.localenv


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

    pods = {p.metadata.name: p for p in until("every pod ready", all_ready, timeout=60, interval=0.2, retry_on=())}
    ready0 = next(c.last_transition_time for c in pods["db-0"].status.conditions if c.type == "Ready")
    assert ready0 <= pods["db-1"].metadata.creation_timestamp, "db-1 was created before db-0 was Ready"
    pvcs = core.list_namespaced_persistent_volume_claim(namespace).items
    assert sorted(p.metadata.name for p in pvcs) == ["data-db-0", "data-db-1", "data-db-2"]
    until("every claim bound",
          lambda: all(p.status.phase == "Bound" for p in core.list_namespaced_persistent_volume_claim(namespace).items),
          timeout=30, interval=0.2, retry_on=())


def test_job_completes(dyn, kube, namespace):
    from kubernetes import client

    _apply(dyn, _job("load", namespace))
    batch = client.BatchV1Api(kube)

    def succeeded():
        job = batch.read_namespaced_job("load", namespace)
        return job if (job.status.succeeded or 0) >= 1 else None

    job = until("the Job to succeed", succeeded, timeout=60, interval=0.2, retry_on=())
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

    job = until("the Job to fail", failed, timeout=60, interval=0.2, retry_on=())
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

    pods = until("one pod on every node", one_per_node, timeout=60, interval=0.2, retry_on=())
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

    pod_ip = until("the pod's IP", ready_ip, timeout=60, interval=0.2, retry_on=())
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [localenv["DNS_SERVER"]]
    resolver.port = int(localenv["DNS_PORT"])

    fqdn = "dns-1.dns.%s.svc.cluster.local" % namespace

    def answers(name, rtype):
        try:
            return [r.to_text() for r in resolver.resolve(name, rtype)]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None

    assert until("the A record", lambda: answers(fqdn, "A"), timeout=30, interval=0.2, retry_on=()) == [pod_ip]

    def both_srv():
        found = answers("_client._tcp.dns.%s.svc.cluster.local" % namespace, "SRV")
        return found if found and len(found) == 2 else None

    srv = until("both SRV records", both_srv, timeout=30, interval=0.2, retry_on=())
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


def _proc_net_address(ip):
    """An IPv4 address as /proc/net/tcp writes it (hex, host byte order)."""
    return "".join("%02X" % int(part) for part in reversed(ip.split(".")))


def test_every_part_listens_on_loopback_or_the_bridge_only(localenv):
    loopback = {"0100007F", "00000000000000000000000001000000"}
    if localenv.get("LOCALENV_REAL_NODE_IP"):
        # The kubelet (for the API server) and CoreDNS (for the pods) answer on the real node's bridge.
        loopback.add(_proc_net_address(localenv["LOCALENV_REAL_NODE_IP"]))
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


# ----------------------------------------------------------------------------- the real node
# Pods that ask for the real node (its label and a toleration of its taint) run as real
# containers: these tests read what the processes in them print and do.


@pytest.fixture(scope="module")
def real_node(localenv):
    name = localenv.get("LOCALENV_REAL_NODE_NAME")
    if not name:
        pytest.skip("the local environment was started without the real node (LOCALENV_REAL_NODE=0)")
    return name


def _real_pod(name, ns, script, labels=None, security=None, volumes=None, mounts=None, image=None, env=None):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
        "spec": {
            "nodeSelector": {"datastore.kubernetes/real-node": "true"},
            "tolerations": [{"key": "datastore.kubernetes/real-node", "operator": "Exists", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 1,
            "securityContext": security or {},
            "volumes": volumes or [],
            "containers": [{"name": "main", "image": image or env["LOCALENV_SHELL_IMAGE"],
                            "command": ["sh", "-c", script], "volumeMounts": mounts or []}],
        },
    }


def _running(core, name, ns, timeout=90):
    def check():
        pod = core.read_namespaced_pod(name, ns)
        waiting = [s.state.waiting for s in (pod.status.container_statuses or []) if s.state.waiting]
        if any(w.reason in ("ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "CreateContainerError")
               for w in waiting):
            raise AssertionError("pod %s/%s cannot start: %s" % (ns, name, waiting[0]))
        return pod if pod.status.phase == "Running" else None

    return until("pod %s/%s to run" % (ns, name), check, timeout=timeout, interval=0.5, retry_on=())


def _exec(kubectl, ns, pod, script):
    proc = kubectl("-n", ns, "exec", pod, "--", "sh", "-c", script, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_real_node_is_ready_runs_containerd_and_takes_only_what_tolerates_it(real_node, kube, localenv, dyn, namespace):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    node = core.read_node(real_node)
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.status.node_info.kubelet_version == client.VersionApi(kube).get_code().git_version
    assert node.metadata.labels["type"] == "real", "kwok manages nodes labelled type=kwok; this one is not"
    assert {(t.key, t.effect) for t in node.spec.taints or []} >= {("datastore.kubernetes/real-node", "NoSchedule")}
    assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == [localenv["LOCALENV_REAL_NODE_IP"]]
    # Without the toleration a pod that asks for the node is not scheduled.
    pod = _real_pod("intolerant", namespace, "true", env=localenv)
    del pod["spec"]["tolerations"]
    _apply(dyn, pod)

    def unschedulable():
        found = core.read_namespaced_pod("intolerant", namespace)
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in (found.status.conditions or []))

    until("the pod to be unschedulable", unschedulable, timeout=30, interval=0.2, retry_on=())
    assert core.read_namespaced_pod("intolerant", namespace).spec.node_name is None


def test_real_pod_runs_a_process_whose_output_is_in_its_log_and_exec_works(real_node, kube, kubectl, localenv, dyn, namespace):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _apply(dyn, _real_pod("hello", namespace, 'echo "hello from $(hostname)"; exec sleep 3600', env=localenv))
    pod = _running(core, "hello", namespace)
    assert pod.spec.node_name == real_node
    assert pod.status.pod_ip.startswith(localenv["LOCALENV_REAL_NODE_IP"].rsplit(".", 1)[0] + ".")
    until("the pod's log", lambda: "hello from hello\n" in core.read_namespaced_pod_log("hello", namespace),
          timeout=30, interval=0.2, retry_on=())
    code, out, err = _exec(kubectl, namespace, "hello", "echo $((6 * 7)) > /tmp/answer; cat /tmp/answer; "
                                                        "cat /proc/1/cmdline | tr '\\0' ' '")
    assert code == 0, err
    assert out.split("\n")[0] == "42"
    assert "sleep 3600" in out, "PID 1 of the container is not the process the pod started: %s" % out


def _web(namespace, localenv):
    script = ('mkdir -p /www && echo "served by $(hostname)" > /www/index.html && '
              'exec httpd -f -p 8080 -h /www')
    pod = _real_pod("web", namespace, script, env=localenv)
    pod["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    pod["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return pod, service


def test_cluster_ip_service_answers_from_a_pod_and_from_the_host(real_node, kube, kubectl, localenv, dyn, namespace):
    import urllib.request

    from kubernetes import client

    core = client.CoreV1Api(kube)
    pod, service = _web(namespace, localenv)
    _apply(dyn, service)
    _apply(dyn, pod)
    _apply(dyn, _real_pod("client", namespace, "exec sleep 3600", env=localenv))
    _running(core, "client", namespace)

    def ready():
        return core.read_namespaced_pod("web", namespace).status.container_statuses[0].ready

    until("the pods to be ready", ready, timeout=60, interval=0.2, retry_on=())
    cluster_ip = core.read_namespaced_service("web", namespace).spec.cluster_ip
    assert cluster_ip.startswith("10.96.")

    def from_pod(address):
        # (busybox's nc: its static wget crashes in getaddrinfo)
        code, out, _err = _exec(kubectl, namespace, "client",
                                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 %s 80" % address)
        return out if code == 0 and out.startswith("HTTP/1.") else None

    answer = until("an answer in the pod", lambda: from_pod(cluster_ip), timeout=30, interval=0.2, retry_on=())
    assert answer.splitlines()[-1] == "served by web"
    # By its short name too: the pod's resolver appends <namespace>.svc.cluster.local.
    assert from_pod("web").splitlines()[-1] == "served by web"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def from_host():
        try:
            with opener.open("http://%s/" % cluster_ip, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            return None

    answer = until("an answer from the host", from_host, timeout=30, interval=0.2, retry_on=())
    assert answer.strip() == "served by web"


def test_dns_a_and_srv_records_resolve_inside_a_pod(real_node, kube, kubectl, localenv, dyn, namespace):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _apply(dyn, _headless("peers", namespace))
    for name in ("peer-0", "peer-1"):
        pod = _real_pod(name, namespace, "exec sleep 3600", labels={"app": "peers"}, env=localenv)
        pod["spec"].update(hostname=name, subdomain="peers")
        pod["spec"]["containers"][0]["ports"] = [{"name": "client", "containerPort": 9042}]
        _apply(dyn, pod)
    ips = {name: _running(core, name, namespace).status.pod_ip for name in ("peer-0", "peer-1")}
    domain = "peers.%s.svc.cluster.local" % namespace

    code, out, err = _exec(kubectl, namespace, "peer-0", "cat /etc/resolv.conf")
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines() if line.startswith("nameserver")] == \
        [localenv["LOCALENV_REAL_NODE_IP"]]

    def a_record():
        code, out, _err = _exec(kubectl, namespace, "peer-0", "nslookup -type=a peer-1.%s" % domain)
        return out if code == 0 and ips["peer-1"] in out else None

    until("the pod's A record", a_record, timeout=30, interval=0.2, retry_on=())

    def srv_records():
        code, out, _err = _exec(kubectl, namespace, "peer-0", "nslookup -type=srv _client._tcp.%s" % domain)
        targets = sorted(line.split()[-1].rstrip(".") for line in out.splitlines() if "9042" in line)
        return targets if code == 0 and len(targets) == 2 else None

    srv = until("the SRV records", srv_records, timeout=30, interval=0.2, retry_on=())
    assert srv == ["peer-0." + domain, "peer-1." + domain]
    # Nothing outside cluster.local resolves: CoreDNS forwards no query off the host.
    code, out, _err = _exec(kubectl, namespace, "peer-0", "nslookup -type=a deb.debian.org.")
    assert code != 0 or "Address" not in out.split("Name:", 1)[-1], "a name outside the cluster resolved: %s" % out


def _unique_shell_image(tmp_path, ref):
    """An OCI archive of a one-binary shell image whose ID no other image has."""
    oci_archive = node_script("oci_archive")

    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), root / "bin" / "busybox")
    os.symlink("busybox", root / "bin" / "sh")
    os.symlink("busybox", root / "bin" / "echo")
    os.symlink("busybox", root / "bin" / "hostname")
    archive = str(tmp_path / "image.tar")
    oci_archive.archive(archive, ref, {"Cmd": ["sh"], "Env": ["PATH=/bin", "MIRROR_TEST=" + ref]}, [str(root)])
    return archive


@pytest.mark.parametrize("registry", ["docker.io", "registry.example.org"])
def test_an_image_named_after_an_outside_registry_comes_from_the_local_one(real_node, registry, kube, localenv, dyn, namespace, tmp_path):
    from kubernetes import client

    if not localenv.get("OCI_REGISTRY"):
        pytest.skip("no local registry (Debian package docker-registry) in this environment")
    # An image only the local registry holds, pushed from a containerd namespace of its own: the
    # kubelet's namespace (k8s.io) never sees it before the pod asks for it.
    repo = "mirror-test/shell:%s" % uuid.uuid4().hex[:12]
    local = "%s/%s" % (localenv["OCI_REGISTRY"], repo)
    address = localenv["CONTAINER_RUNTIME_ENDPOINT"].replace("unix://", "")
    ctr = ["ctr", "--address", address, "-n", "datastore-test"]
    subprocess.run(ctr + ["images", "import", _unique_shell_image(tmp_path, local)], check=True, capture_output=True)
    subprocess.run(ctr + ["images", "push", "--plain-http", local], check=True, capture_output=True)
    subprocess.run(ctr + ["images", "rm", local], check=True, capture_output=True)
    outside_name = "%s/%s" % (registry, repo)
    pod = _real_pod("mirrored", namespace, "echo pulled from $(hostname)", env=localenv, image=outside_name)
    pod["spec"]["restartPolicy"] = "Never"
    _apply(dyn, pod)
    core = client.CoreV1Api(kube)

    def finished():
        found = core.read_namespaced_pod("mirrored", namespace)
        waiting = [s.state.waiting for s in (found.status.container_statuses or []) if s.state.waiting]
        assert not any(w.reason == "ImagePullBackOff" for w in waiting), waiting
        return found if found.status.phase == "Succeeded" else None

    try:
        until("the pod to finish", finished, timeout=60, interval=0.5, retry_on=())
        assert core.read_namespaced_pod_log("mirrored", namespace) == "pulled from mirrored\n"
    finally:
        subprocess.run([localenv["CRICTL"], "--runtime-endpoint", localenv["CONTAINER_RUNTIME_ENDPOINT"], "rmi",
                        outside_name], capture_output=True, check=False)


def _claim(name, ns, size, storage_class):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": size}}}}


def _writer(name, ns, claim, localenv):
    return _real_pod(
        name, ns, "exec sleep 3600", env=localenv,
        security={"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000, "runAsNonRoot": True},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        mounts=[{"name": "data", "mountPath": "/data"}])


def test_non_root_pod_writes_to_its_claim_through_fs_group(real_node, kube, kubectl, localenv, dyn, namespace):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _apply(dyn, _claim("data", namespace, "1Gi", localenv["LOCALENV_REAL_STORAGE_CLASS"]))
    _apply(dyn, _writer("writer", namespace, "data", localenv))
    _running(core, "writer", namespace)
    claim = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert claim.status.phase == "Bound"
    volume = core.read_persistent_volume(claim.spec.volume_name)
    assert volume.spec.local is not None, "the claim is not backed by a local volume"
    terms = volume.spec.node_affinity.required.node_selector_terms
    assert terms[0].match_expressions[0].values == [real_node]
    code, out, err = _exec(kubectl, namespace, "writer",
                           "id -u; echo written > /data/file && cat /data/file && stat -c '%u %g' /data/file")
    assert code == 0, "the non-root pod could not write to its volume: %s" % err
    assert out.split() == ["1000", "written", "1000", "2000"]


def test_claim_on_the_real_node_grows(real_node, kube, kubectl, localenv, dyn, namespace):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _apply(dyn, _claim("grow", namespace, "1Gi", localenv["LOCALENV_REAL_STORAGE_CLASS"]))
    _apply(dyn, _writer("grower", namespace, "grow", localenv))
    _running(core, "grower", namespace)
    core.patch_namespaced_persistent_volume_claim(
        "grow", namespace, {"spec": {"resources": {"requests": {"storage": "3Gi"}}}})

    def grown():
        claim = core.read_namespaced_persistent_volume_claim("grow", namespace)
        return claim if (claim.status.capacity or {}).get("storage") == "3Gi" else None

    claim = until("the claim to grow", grown, timeout=30, interval=0.2, retry_on=())
    assert core.read_persistent_volume(claim.spec.volume_name).spec.capacity["storage"] == "3Gi"
    assert not [c for c in claim.status.conditions or [] if c.type in ("Resizing", "FileSystemResizePending")]
    code, _out, err = _exec(kubectl, namespace, "grower", "echo more > /data/after-growing")
    assert code == 0, err
