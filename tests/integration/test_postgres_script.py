# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The postgres role's start-up script (roles/postgres/files/postgres.sh) with real PostgreSQL servers.

A primary (``pg-0``) and a replica (``pg-1``) run on this machine from the Debian PostgreSQL the
local environment installs, each with the configuration the role renders, exactly as the script
runs them in a pod: the same subcommands, environment, secret files and directories, only with
ports and paths of their own. What the pods then add (DNS names, volumes) is proven on the real
node by tests/integration/test_datastores_real.py; this file proves the script's logic: the
replication role and slots, passwords kept out of every file and command line, readiness only
against the final server, and replication surviving restarts and password changes.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(REPO, "roles", "postgres")
SCRIPT = os.path.join(ROLE, "files", "postgres.sh")
WAIT = 120


def _pg_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[4]))
    if not dirs:
        pytest.fail("no PostgreSQL server programs in /usr/lib/postgresql/*/bin: run `make localenv-install`")
    return dirs[-1]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _render_config(dest, params):
    """Render the role's postgresql.conf and pg_hba.conf with Ansible, as the role does."""
    play = [{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars_files": [os.path.join(ROLE, "defaults", "main.yml"), os.path.join(ROLE, "vars", "main.yml")],
        "tasks": [{"name": "render %s" % name,
                   "ansible.builtin.template": {"src": os.path.join(ROLE, "templates", name + ".j2"),
                                                "dest": os.path.join(dest, name), "mode": "0644"}}
                  for name in ("postgresql.conf", "pg_hba.conf")],
    }]
    path = os.path.join(dest, "render.yml")
    with open(path, "w") as handle:
        json.dump(play, handle)
    # Extra vars: they go over the role's defaults, as a play's role vars do.
    extra = {"postgres_parameters": params, "postgres_credentials_secret": "unused",
             "ansible_python_interpreter": sys.executable}
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                    "-e", json.dumps(extra), path],
                   check=True, capture_output=True, text=True, timeout=300)
    os.unlink(path)


class Server:
    """One pod's worth of directories and environment, and the script's subcommands run in them."""

    def __init__(self, base, name, port, primary_port, passwords, user):
        self.name, self.port, self.user = name, port, user
        self.root = os.path.join(base, name)
        self.conf = os.path.join(self.root, "conf")
        self.secrets = os.path.join(self.root, "secrets")
        self.run_dir = os.path.join(self.root, "run")
        self.tmp = os.path.join(self.root, "tmp")
        self.pgdata = os.path.join(self.root, "data", "pgdata")
        for path in (self.conf, self.secrets + "/superuser", self.secrets + "/replication", self.run_dir, self.tmp,
                     os.path.dirname(self.pgdata)):
            os.makedirs(path)
        _render_config(self.conf, {"port": port, "listen_addresses": "127.0.0.1", "unix_socket_directories": self.run_dir,
                                   "shared_buffers": "16MB", "max_connections": 20})
        with open(os.path.join(self.conf, "postgresql.conf")) as handle:
            assert "port = %d\n" % port in handle.read(), "the test's settings did not reach postgresql.conf"
        shutil.copy(SCRIPT, os.path.join(self.conf, "postgres.sh"))
        self.set_secrets(**passwords)
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOSTNAME": name, "PGDATA": self.pgdata,
            "PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(primary_port), "POSTGRES_PORT": str(port),
            "POSTGRES_DB": "app", "POSTGRES_REPLICATION_USER": "replicator", "POSTGRES_INITDB_ARGS": "--encoding=UTF8 --locale=C",
            "POSTGRES_CONF_DIR": self.conf, "POSTGRES_SECRETS_DIR": self.secrets, "POSTGRES_RUN_DIR": self.run_dir,
            "TMPDIR": self.tmp, "PGUSER": "admin", "LANG": "C",
        }
        self.process = None
        self.log = os.path.join(self.root, "server.log")

    def set_secrets(self, superuser, replication):
        # Like a Secret volume: the values without a trailing newline.
        for path, value in (("superuser/username", "admin"), ("superuser/password", superuser),
                            ("replication/password", replication)):
            with open(os.path.join(self.secrets, path), "w") as handle:
                handle.write(value)

    def _argv(self, *args):
        argv = ["sh", os.path.join(self.conf, "postgres.sh"), *args]
        if os.getuid() == 0:
            argv = ["setpriv", "--reuid=%d" % self.user.pw_uid, "--regid=%d" % self.user.pw_gid, "--clear-groups"] + argv
        return argv

    def run(self, *args, check=True):
        proc = subprocess.run(self._argv(*args), env=self.env, capture_output=True, text=True, timeout=WAIT, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("postgres.sh %s on %s failed (rc=%s): %s"
                                 % (" ".join(args), self.name, proc.returncode, proc.stderr[-3000:]))
        return proc

    def start(self):
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self._argv("start"), env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def ready(self):
        return self.run("ready", check=False).returncode == 0

    def wait_ready(self):
        deadline = time.monotonic() + WAIT
        while not self.ready():
            if self.process.poll() is not None:
                raise AssertionError("%s exited with %s: %s" % (self.name, self.process.returncode, self.output()[-3000:]))
            if time.monotonic() > deadline:
                raise AssertionError("%s never became ready: %s" % (self.name, self.output()[-3000:]))
            time.sleep(0.2)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.run("stop", "30", check=False)
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGQUIT)
                self.process.wait(timeout=WAIT)
        self.process = None

    def output(self):
        with open(self.log, errors="replace") as handle:
            return handle.read()

    def sql(self, query, user="admin", password=None, database="app", host=None, check=True):
        env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5", "LANG": "C"}
        if password is not None:
            env["PGPASSWORD"] = password
        argv = [os.path.join(_pg_bin(), "psql"), "--no-psqlrc", "--tuples-only", "--no-align", "-v", "ON_ERROR_STOP=1",
                "--host", host or self.run_dir, "--port", str(self.port), "--username", user, "--dbname", database,
                "--command", query]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=WAIT, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s on %s failed: %s" % (query, self.name, proc.stderr))
        return proc if not check else proc.stdout.strip()


def _until(what, probe):
    deadline = time.monotonic() + WAIT
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for %s" % what)
        time.sleep(0.3)


@pytest.fixture
def pair():
    user = pwd.getpwnam("postgres") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    base = tempfile.mkdtemp(prefix="pgscript-")
    os.chmod(base, 0o755)
    passwords = {"superuser": "su-" + uuid.uuid4().hex, "replication": "rep-" + uuid.uuid4().hex}
    primary_port, replica_port = _free_port(), _free_port()
    primary = Server(base, "pg-0", primary_port, primary_port, passwords, user)
    replica = Server(base, "pg-1", replica_port, primary_port, passwords, user)
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", "%d:%d" % (user.pw_uid, user.pw_gid), base], check=True)
    try:
        yield primary, replica, passwords
    finally:
        for server in (replica, primary):
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def _streaming(primary, application_name):
    rows = primary.sql("SELECT application_name, state FROM pg_stat_replication")
    return ("%s|streaming" % application_name) in rows.splitlines()


def _start_replica(replica):
    replica.run("wait-for-primary")
    replica.run("clone-primary")
    replica.start()
    replica.wait_ready()


def _streaming_pair(pair):
    """pg-0 the primary, pg-1 streaming from it."""
    primary, replica, _passwords = pair
    primary.start()
    primary.wait_ready()
    _start_replica(replica)
    _until("pg-1 streaming", lambda: _streaming(primary, "pg-1"))
    return primary, replica


def _streaming_pair_with_a_row(pair):
    """pg-0 the primary, pg-1 streaming from it, a table ``t`` with the row 1 on both."""
    primary, replica = _streaming_pair(pair)
    primary.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    _until("the row on pg-1", lambda: replica.sql("SELECT count(*) FROM t", check=False).stdout.strip() == "1")
    return primary, replica


def test_primary_is_ready_only_once_set_up(pair):
    primary, _replica, _passwords = pair
    primary.start()
    primary.wait_ready()
    # The first server the probe reaches is the final one: set up, and listening on TCP.
    assert primary.sql("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'") == "t"
    assert primary.sql("SHOW listen_addresses") == "127.0.0.1"
    assert primary.sql("SELECT 1 FROM pg_database WHERE datname = 'app'") == "1"
    assert os.path.isfile(os.path.join(os.path.dirname(primary.pgdata), ".datastore-setup"))
    # Only the final server ever listened where the probe asks; the set-up server had its own socket.
    output = primary.output()
    listening = 'listening on Unix socket "%s/' % primary.run_dir
    assert output.count(listening) == 1
    assert output.index("setting up the database app") < output.index(listening)


def test_replica_streams_through_its_slot_and_refuses_writes(pair):
    passwords = pair[2]
    primary, replica = _streaming_pair(pair)
    assert primary.sql("SELECT slot_name, slot_type, active FROM pg_replication_slots") == "pg_1|physical|t"
    assert replica.sql("SELECT pg_is_in_recovery()") == "t"

    primary.sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')")
    _until("the row on the replica", lambda: replica.sql("SELECT v FROM t WHERE id = 1", check=False).stdout.strip() == "one")
    refused = replica.sql("INSERT INTO t VALUES (2, 'two')", check=False)
    assert refused.returncode != 0 and "read-only transaction" in refused.stderr

    # No password in any file of either server, in their command lines or in their logs.
    secrets = [p.encode() for p in passwords.values()]
    for server in (primary, replica):
        for path in glob.glob(os.path.join(os.path.dirname(server.pgdata), "**"), recursive=True):
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    content = handle.read()
                assert not any(s in content for s in secrets), path
        assert not any(s.decode() in server.output() for s in secrets)
    cmdlines = ""
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as handle:
                cmdlines += handle.read().replace(b"\0", b" ").decode(errors="replace") + "\n"
        except OSError:
            pass
    assert "primary_conninfo=host=127.0.0.1" in cmdlines
    assert not any(s.decode() in cmdlines for s in secrets)
    auto_conf = open(os.path.join(replica.pgdata, "postgresql.auto.conf")).read()
    assert "primary_conninfo" not in auto_conf


def test_replication_survives_restarts_and_password_changes(pair):
    passwords = pair[2]
    primary, replica = _streaming_pair(pair)
    primary.sql("CREATE TABLE t (id int PRIMARY KEY)")

    # The superuser's password changes; the replication role is not affected.
    new_superuser = "su2-" + uuid.uuid4().hex
    primary.sql("ALTER ROLE admin PASSWORD '%s'" % new_superuser)
    replica.stop()
    primary.sql("INSERT INTO t VALUES (1)")
    _start_replica(replica)
    _until("pg-1 streaming again", lambda: _streaming(primary, "pg-1"))
    _until("the row written while it was down", lambda: replica.sql("SELECT count(*) FROM t", check=False).stdout.strip() == "1")
    assert primary.sql("SELECT current_user", password=new_superuser, host="127.0.0.1") == "admin"

    # The replication password changes in the Secret: the primary sets it at its next start.
    new_replication = "rep2-" + uuid.uuid4().hex
    for server in (primary, replica):
        server.set_secrets(superuser=passwords["superuser"], replication=new_replication)
    replica.stop()
    primary.stop()
    primary.start()
    primary.wait_ready()
    _start_replica(replica)
    _until("pg-1 streaming with the new password", lambda: _streaming(primary, "pg-1"))
    old = primary.sql("SELECT 1", user="replicator", password=passwords["replication"], database="postgres",
                      host="127.0.0.1", check=False)
    assert old.returncode != 0 and "password authentication failed" in old.stderr

    # The slot is dropped while the replica is away: it gets a new one and keeps its data.
    replica.stop()
    primary.sql("SELECT pg_drop_replication_slot('pg_1')")
    primary.sql("INSERT INTO t VALUES (2)")
    marker = os.path.join(replica.pgdata, "PG_VERSION")
    before = os.stat(marker).st_ino
    _start_replica(replica)
    assert os.stat(marker).st_ino == before
    _until("pg-1 streaming through a new slot", lambda: _streaming(primary, "pg-1"))
    _until("both rows on the replica", lambda: replica.sql("SELECT count(*) FROM t", check=False).stdout.strip() == "2")


def test_interrupted_clone_and_initdb_leave_nothing_behind(pair):
    primary, replica, _passwords = pair
    # Leftovers of an initdb and of a base backup killed halfway.
    for leftover in (primary.pgdata + ".init", replica.pgdata + ".clone", replica.pgdata):
        os.makedirs(leftover)
        with open(os.path.join(leftover, "junk"), "w") as handle:
            handle.write("half-written")
    if os.getuid() == 0:
        for server in (primary, replica):
            subprocess.run(["chown", "-R", "%d:%d" % (server.user.pw_uid, server.user.pw_gid), server.root], check=True)
    primary.start()
    primary.wait_ready()
    _start_replica(replica)
    _until("pg-1 streaming", lambda: _streaming(primary, "pg-1"))
    assert not os.path.exists(replica.pgdata + ".clone")
    assert not os.path.exists(os.path.join(replica.pgdata, "junk"))
    assert not os.path.exists(primary.pgdata + ".init")


def test_the_pod_primary_pod_names_is_the_primary_and_the_old_one_follows_it(pair):
    """A switchover as the switchover module does it, with the script's own subcommands: the record (PRIMARY_POD)
    names pg-1, pg-0 stops cleanly, pg-1 is promoted, pg-0 starts again as its standby on timeline 2."""
    primary, replica = _streaming_pair_with_a_row(pair)

    for server in (primary, replica):
        server.env.update(PRIMARY_POD="pg-1", PRIMARY_PORT=str(replica.port))
    primary.stop()
    replica.sql("SELECT pg_promote(true, 60)")
    assert replica.sql("SELECT pg_is_in_recovery()") == "f"
    replica.sql("SELECT pg_create_physical_replication_slot('pg_0', true); INSERT INTO t VALUES (2)")

    primary.run("wait-for-primary")
    primary.run("clone-primary")
    primary.start()
    primary.wait_ready()
    _until("pg-0 streaming from pg-1", lambda: _streaming(replica, "pg-0"))
    _until("the new primary's row on pg-0", lambda: primary.sql("SELECT count(*) FROM t", check=False).stdout.strip() == "2")
    assert primary.sql("SELECT pg_is_in_recovery()") == "t"
    assert primary.sql("SELECT received_tli, slot_name FROM pg_stat_wal_receiver") == "2|pg_0"
    refused = primary.sql("INSERT INTO t VALUES (3)", check=False)
    assert refused.returncode != 0 and "read-only transaction" in refused.stderr

    # The new primary restarted is the primary again, not a standby of itself.
    replica.stop()
    replica.start()
    replica.wait_ready()
    assert replica.sql("SELECT pg_is_in_recovery(), (SELECT timeline_id FROM pg_control_checkpoint())") == "f|2"
    _until("pg-0 streaming again", lambda: _streaming(replica, "pg-0"))

    # A standby with data starts while its primary is away (after a switchover the primary may have a
    # higher ordinal, which the StatefulSet starts only once this pod is ready), and streams once it is back.
    primary.stop()
    replica.stop()
    assert "does not answer" in primary.run("clone-primary").stderr
    primary.run("wait-for-primary")
    primary.start()
    primary.wait_ready()
    assert primary.sql("SELECT pg_is_in_recovery(), count(*) FROM t") == "t|2"
    replica.start()
    replica.wait_ready()
    _until("pg-0 streaming once pg-1 is back", lambda: _streaming(replica, "pg-0"))


def test_a_replica_whose_timeline_forked_off_is_cloned_anew_when_marked(pair):
    """pg-1 promoted on its own (a split: a row only it has) cannot follow pg-0 again; once the switchover
    module's mark is in its volume, its next clone-primary clones pg-0 anew, and only then."""
    primary, replica = _streaming_pair_with_a_row(pair)
    replica.sql("SELECT pg_promote(true, 60)")
    replica.sql("INSERT INTO t VALUES (100)")  # only on pg-1's own timeline
    primary.sql("INSERT INTO t VALUES (2)")
    replica.stop()

    # Without the mark: its data stays, and it cannot stream from pg-0 (its timeline is not pg-0's).
    _start_replica(replica)
    _until("pg-1 refused for its timeline", lambda: "of the primary is behind recovery timeline 2" in replica.output())
    assert not _streaming(primary, "pg-1")
    assert replica.sql("SELECT count(*) FROM t WHERE id = 100") == "1"
    replica.stop()

    mark = os.path.join(os.path.dirname(replica.pgdata), ".datastore-reclone")
    with open(mark, "w"):
        pass
    if os.getuid() == 0:
        os.chown(mark, replica.user.pw_uid, replica.user.pw_gid)
    assert "clone the primary anew" in replica.run("clone-primary").stderr
    assert not os.path.exists(mark)
    replica.start()
    replica.wait_ready()
    _until("pg-1 streaming again", lambda: _streaming(primary, "pg-1"))
    assert replica.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t") == "1,2"
    assert replica.sql("SELECT pg_is_in_recovery()") == "t"
