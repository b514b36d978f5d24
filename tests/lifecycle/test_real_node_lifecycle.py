"""The real node's life on the host: a crashed run does not stop the next `up`, and `down`
leaves nothing of the node behind.

Containers outlive the processes that started them, so what is checked here is the host
itself (processes, mounts, cgroups, network interfaces, routes, iptables), read directly,
not through the environment's own cleanup code. These tests stop the environment they run
against: run them in a pytest process of their own, after everything else
(``make lifecycle``; ``make test`` runs them last).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
from testlib.realnode import until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCALENV = os.path.join(REPO, "tools", "localenv", "localenv.sh")
LOCK = "/run/datastore-kubernetes-real-node"
OUR_CHAINS = ("KUBE-", "CNI-", "DSK8S-")


def host_leftovers(state, bridge, kwok_cidr="10.244.0.0/16"):
    """Everything of a real node still on the host, one line each."""
    found = []
    socket = os.path.join(state, "containerd", "containerd.sock")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if socket.encode() in argv:
            found.append("process %s: %s" % (pid, b" ".join(argv).decode(errors="replace")[:120]))
    with open("/proc/self/mountinfo") as handle:
        found += ["mount " + line.split()[4] for line in handle
                  if line.split()[4] == state or line.split()[4].startswith(state + "/")]
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        if os.path.isdir(os.path.join("/sys/fs/cgroup", hierarchy, "kubepods")):
            found.append("cgroup %s/kubepods" % hierarchy)
    if os.path.exists(os.path.join("/sys/class/net", bridge)):
        found.append("network interface " + bridge)
    routes = subprocess.run(["ip", "route", "show", kwok_cidr], capture_output=True, text=True, check=True).stdout
    found += ["route " + line for line in routes.splitlines()]
    for save in ("iptables-save", "ip6tables-save"):
        proc = subprocess.run([save], capture_output=True, text=True, check=False)
        found += ["%s chain %s" % (save, line[1:].split()[0]) for line in proc.stdout.splitlines()
                  if line.startswith(":") and line[1:].startswith(OUR_CHAINS)]
    return found


def _localenv(env, command):
    # As a developer would run it: not with the settings env.sh exported into this process.
    run_env = {key: value for key, value in os.environ.items() if key not in env}
    run_env.update(DATASTORE_K8S_STATE=env["LOCALENV_STATE"], LOCALENV_PORT_OFFSET=env["LOCALENV_PORT_OFFSET"],
                   PYTHON=sys.executable)
    return subprocess.run([LOCALENV, command], env=run_env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def node_env(localenv):
    if not localenv.get("LOCALENV_REAL_NODE_NAME"):
        pytest.skip("the local environment was started without the real node (LOCALENV_REAL_NODE=0)")
    return localenv


def _pod(name, ns, env):
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeSelector": {"datastore.kubernetes/real-node": "true"},
            "tolerations": [{"key": "datastore.kubernetes/real-node", "operator": "Exists"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": env["LOCALENV_SHELL_IMAGE"],
                            "command": ["sh", "-c", "echo started $(hostname); exec sleep 3600"]}],
        },
    }


def _running_with_log(core, name, ns):
    def check():
        pod = core.read_namespaced_pod(name, ns)
        if pod.status.phase != "Running":
            return None
        return "started " + name in core.read_namespaced_pod_log(name, ns)

    until("pod %s/%s to run and log" % (ns, name), check, timeout=120, interval=0.5, retry_on=())


def test_up_after_a_crash_brings_back_a_working_node(node_env, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    ns = "lc-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_pod(ns, _pod("before", ns, node_env))
    _running_with_log(core, "before", ns)

    # The node's own processes die without cleaning up; the containers live on.
    pids = os.path.join(node_env["LOCALENV_STATE"], "pids")
    for part in ("kubelet", "kube-proxy", "local-provisioner", "containerd"):
        with open(os.path.join(pids, part)) as handle:
            pid = int(handle.read())
        os.kill(pid, signal.SIGKILL)
        until("%s (pid %d) to die" % (part, pid),
              lambda: not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
              timeout=10, interval=0.1, retry_on=())
    left = host_leftovers(node_env["LOCALENV_STATE"], node_env["LOCALENV_REAL_NODE_BRIDGE"])
    assert any(item.startswith("process") for item in left), "the containers did not outlive the node: %s" % left

    proc = _localenv(node_env, "up")
    assert proc.returncode == 0, proc.stderr[-3000:]
    node = core.read_node(node_env["LOCALENV_REAL_NODE_NAME"])
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    core.create_namespaced_pod(ns, _pod("after", ns, node_env))
    _running_with_log(core, "after", ns)
    core.delete_namespace(ns)


def test_down_leaves_nothing_of_the_node_on_the_host(node_env, kube):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    ns = "lc-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_pod(ns, _pod("running", ns, node_env))
    _running_with_log(core, "running", ns)
    state, bridge = node_env["LOCALENV_STATE"], node_env["LOCALENV_REAL_NODE_BRIDGE"]
    assert host_leftovers(state, bridge), "the node made nothing on the host to clean up"
    with open(LOCK) as handle:
        before = dict(line.strip().split("=", 1) for line in handle if "=" in line)

    proc = _localenv(node_env, "down")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert host_leftovers(state, bridge) == []
    assert not os.path.exists(LOCK)
    with open("/proc/sys/net/ipv4/ip_forward") as handle:
        assert handle.read().strip() == before["ip_forward"], "IP forwarding was not put back as it was"
    # The host directories containerd and the kubelet made at fixed paths, which were not there before.
    assert [path for path in before["made"].split() if os.path.exists(path)] == []
