# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for tests whose pods run on the local environment's real node.

The roles run through ansible-playbook, as users run them; the tests then ask the datastores
themselves (``kubectl exec`` into their pods, or their addresses on the node's bridge, which this
host routes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from testlib import REPO, collections_root  # noqa: F401  (collections_root is part of this helper set)
IMAGES = {
    "postgres": "localhost/datastore-kubernetes/postgres:17-2",
    "cassandra": "localhost/datastore-kubernetes/cassandra:5.0-2",
    "elasticsearch": "localhost/datastore-kubernetes/elasticsearch:8.18",
    "tools": "localhost/datastore-kubernetes/tools:1",
}
NODE_LABEL = "datastore.kubernetes/real-node"


def require_real_node(localenv):
    """The real node's name; fails (does not skip) when the environment has none."""
    node = localenv.get("LOCALENV_REAL_NODE_NAME")
    if not node:
        pytest.fail("the local environment has no real node (LOCALENV_REAL_NODE_NAME): these tests need pods that run")
    return node


def placement(role):
    """Role variables that put a role's pods on the real node with the test image."""
    return {
        role + "_node_selector": {NODE_LABEL: "true"},
        role + "_tolerations": [{"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        role + "_image_pull_policy": "Never",
    }


def run_role(localenv, role, variables, state="present", timeout=1800):
    """Apply one role with ansible-playbook (variables as extra vars); fails the test on failure."""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "roles": [{"role": "datastore.kubernetes." + role}]}]
    variables = dict(variables, **{role + "_state": state, "ansible_python_interpreter": sys.executable})
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "play.yml")
        with open(path, "w") as handle:
            json.dump(play, handle)
        extra = os.path.join(tmp, "vars.json")
        with open(extra, "w") as handle:
            json.dump(variables, handle)
        env = dict(os.environ)
        env.update(localenv)
        env.update({"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                    "ANSIBLE_NOCOLOR": "1"})
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                               "-e", "@" + extra, path], env=env, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError("role %s (%s) failed:\n%s" % (role, state, proc.stdout[-6000:]))
    return proc.stdout


def kubectl(localenv, *args, check=True, timeout=300, stdin=None):
    proc = subprocess.run([localenv["KUBECTL"], "--kubeconfig", localenv["KUBECONFIG"], *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("kubectl %s failed: %s" % (" ".join(args), proc.stderr[-2000:]))
    return proc


def exec_in(localenv, namespace, pod, container, *command, check=True, timeout=300):
    return kubectl(localenv, "exec", "-n", namespace, pod, "-c", container, "--", *command, check=check, timeout=timeout)


def until(what, probe, timeout=300, interval=2, retry_on=(AssertionError,)):
    """Wait (not a timing assertion) until ``probe()`` returns something true; fail with ``what``.

    A probe that raises one of ``retry_on`` is tried again; ``retry_on=()`` lets its failure end the wait.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = probe()
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for %s (last: %s)" % (what, last))
        time.sleep(interval)


def psql(localenv, namespace, pod, sql, container="postgres", database="app", check=True):
    proc = exec_in(localenv, namespace, pod, container, "psql", "--no-psqlrc", "--tuples-only", "--no-align",
                   "-v", "ON_ERROR_STOP=1", "--host=/var/run/postgresql", "--dbname=" + database, "--command", sql,
                   check=check)
    return proc.stdout.strip() if check else proc


def day2_postgres_variables(localenv, namespace, **overrides):
    """The postgres role's variables for three small members with fast probes, as the day-2 tests and benchmark run them
    (the superuser from the Secret ``postgres-superuser``)."""
    probe = {"exec": {"command": ["sh", "/etc/postgresql/postgres.sh", "ready"]}, "periodSeconds": 2,
             "timeoutSeconds": 5, "failureThreshold": 3}
    variables = dict(placement("postgres"), postgres_namespace=namespace, postgres_image=IMAGES["postgres"],
                     postgres_replicas=3, postgres_credentials_secret="postgres-superuser",
                     postgres_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), postgres_storage_size="256Mi",
                     postgres_resources={"requests": {"cpu": "100m", "memory": "256Mi"},
                                         "limits": {"cpu": "1", "memory": "256Mi"}},
                     postgres_parameters={"shared_buffers": "32MB", "wal_retrieve_retry_interval": "1s"},
                     postgres_readiness_probe=probe,
                     postgres_startup_probe=dict(probe, periodSeconds=1, failureThreshold=600),
                     postgres_termination_grace_period_seconds=40)
    variables.update(overrides)
    return variables


def day2_cassandra_variables(localenv, namespace, **overrides):
    """The cassandra role's variables for a three-node ring (the first two ordinals seeds) that fits the real node:
    a small heap, 1 GiB of memory, the CQL port probed every 2 s; as the day-2 tests and benchmark run it."""
    variables = dict(placement("cassandra"), cassandra_namespace=namespace, cassandra_image=IMAGES["cassandra"],
                     cassandra_replicas=3, cassandra_seed_count=2,
                     cassandra_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), cassandra_storage_size="1Gi",
                     cassandra_max_heap_size="384M", cassandra_heap_newsize="96M",
                     cassandra_resources={"requests": {"cpu": "100m", "memory": "1Gi"},
                                          "limits": {"cpu": "2", "memory": "1Gi"}},
                     cassandra_readiness_probe={"tcpSocket": {"port": "cql"}, "periodSeconds": 2, "timeoutSeconds": 3,
                                                "failureThreshold": 2},
                     cassandra_termination_grace_period_seconds=120, cassandra_wait_timeout=1500)
    variables.update(overrides)
    return variables


def streaming(localenv, namespace, primary="postgres-0"):
    rows = psql(localenv, namespace, primary, "SELECT application_name, state FROM pg_stat_replication ORDER BY 1")
    return [line for line in rows.splitlines() if line.endswith("|streaming")]


def crictl(localenv, *args, check=True, timeout=120):
    """crictl against the real node's containerd (the environment's own socket)."""
    proc = subprocess.run([localenv["CRICTL"], "--runtime-endpoint", localenv["CONTAINER_RUNTIME_ENDPOINT"], *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("crictl %s failed: %s" % (" ".join(args), proc.stderr[-2000:]))
    return proc


def kill_container(localenv, namespace, pod, container):
    """SIGKILL one running container of a pod on the real node (no preStop hook, no grace period).

    The pod stays; the kubelet starts the container again as its restart policy says. Only the
    container of ``namespace/pod`` is touched (selected by the kubelet's labels on the container).
    Returns the killed container's id.
    """
    ids = crictl(localenv, "ps", "--quiet", "--state", "running", "--name", "^%s$" % container,
                 "--label", "io.kubernetes.pod.namespace=" + namespace,
                 "--label", "io.kubernetes.pod.name=" + pod).stdout.split()
    if len(ids) != 1:
        raise AssertionError("expected one running container %s in %s/%s, found %s" % (container, namespace, pod, ids))
    # A stop with no grace period: containerd sends SIGKILL at once.
    crictl(localenv, "stop", "--timeout", "0", ids[0])
    return ids[0]


def restart_count(localenv, namespace, pod, container):
    """How many times the kubelet restarted ``container`` of ``pod``."""
    statuses = json.loads(kubectl(localenv, "get", "pod", pod, "-n", namespace, "-o", "json").stdout)["status"]
    for status in statuses.get("containerStatuses", []):
        if status["name"] == container:
            return status.get("restartCount", 0)
    raise AssertionError("pod %s/%s has no container %s" % (namespace, pod, container))
