"""A private local environment for the tests that stop and start servers.

The tests in this directory kill the API server, etcd, OpenBao, PostgreSQL and kwok,
so they never run against the shared environment: a session fixture starts a
second one (own state directory, every port moved by LOCALENV_PORT_OFFSET) and
stops it at the end. ``localenv`` is overridden here, so ``run_module``, ``kube``,
``kubectl`` and ``namespace`` from tests/conftest.py all talk to the private one.
Run this directory in a pytest process of its own (``make reliability`` does): the
session-scoped fixtures of tests/conftest.py cannot serve two environments at once.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)
LOCALENV = os.path.join(REPO, "tools", "localenv", "localenv.sh")
SHARED_STATE = "/tmp/datastore-kubernetes-localenv"
PORT_OFFSET = os.environ.get("RELIABILITY_PORT_OFFSET", "200")


def pytest_collection_modifyitems(session, config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    outside = [i.nodeid for i in items if not str(i.path).startswith(here + os.sep)]
    if outside:
        raise pytest.UsageError("tests/reliability/private needs a pytest run of its own (it replaces the local "
                                "environment); run it apart from %s" % outside[0])
    # The secret scan runs the integration suite first, while every part is as started; the faults
    # follow (the node failure last of them); the orphaned-lease check looks at what all of them
    # left behind, so it goes last.
    order = ("test_secret_scan.py", "test_faults.py", "test_leases.py")
    items.sort(key=lambda item: (order.index(item.path.name) if item.path.name in order else 1,
                                 "test_kwok" in item.name))


def _read_env(path):
    """tests/conftest.py's reader (that module is loaded by pytest under a name of its own choosing)."""
    spec = importlib.util.spec_from_file_location("_datastore_tests_conftest", os.path.join(TESTS, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_env_file(path)


class PrivateEnv:
    """Start, stop and restart the parts of one private local environment."""

    def __init__(self, state):
        self.state = state
        self.env = {}

    def _environ(self):
        # The real node belongs to the shared environment (one per host): this one runs without it.
        env = dict(os.environ, DATASTORE_K8S_STATE=self.state, LOCALENV_PORT_OFFSET=PORT_OFFSET,
                   PYTHON=sys.executable, LOCALENV_REAL_NODE="0")
        for key in ("KUBECONFIG", "VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
            env.pop(key, None)
        return env

    def up(self):
        """Start whatever is not running (the first time: everything) and wait until it is healthy."""
        proc = subprocess.run([LOCALENV, "up"], env=self._environ(), capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0:
            raise AssertionError("private local environment did not come up:\n%s" % proc.stderr[-3000:])
        self.env = _read_env(os.path.join(self.state, "env.sh"))
        return self.env

    def down(self):
        subprocess.run([LOCALENV, "down"], env=self._environ(), capture_output=True, text=True, timeout=300,
                       check=False)

    def pid(self, part):
        with open(os.path.join(self.state, "pids", part)) as handle:
            return int(handle.read().strip())

    def kill(self, part, sig=signal.SIGKILL):
        """Stop one part the hard way and wait until its process is gone."""
        pid = self.pid(part)
        os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            try:
                # Our own child only when the session started it; reap it if so.
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d" % pid), "%s (pid %d) did not stop" % (part, pid)

    def pg_ctl(self, action):
        pgbin = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin")
                                   for v in os.listdir("/usr/lib/postgresql")) if os.path.isdir(d))[-1]
        argv = [os.path.join(pgbin, "pg_ctl"), "-D", os.path.join(self.state, "pg"), "-m", "fast", "-w", action]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)


@pytest.fixture(scope="session")
def private_env():
    state = os.environ.get("RELIABILITY_STATE") or tempfile.mkdtemp(prefix="datastore-k8s-reliability-")
    if os.path.realpath(state) == os.path.realpath(SHARED_STATE):
        pytest.fail("RELIABILITY_STATE must not be the shared local environment (%s)" % SHARED_STATE)
    # PostgreSQL runs as its own user and must reach its data directory below this one.
    os.chmod(state, 0o755)
    env = PrivateEnv(state)
    try:
        env.up()
        yield env
    finally:
        env.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def localenv(private_env):
    """The private environment's settings, in place of the shared one's."""
    os.environ.update(private_env.env)
    return private_env.env
