"""The real node's images (tools/localenv/images/build.sh), tried without a container runtime.

Each archive's layers are unpacked as a runtime would (whiteouts applied, links never
followed) and the image's own programs run in it, chrooted, in private mount, PID and
network namespaces, as the image's user with the image's environment. An archive that
has not been built is skipped with the command that builds it.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

CACHE = os.environ.get("DATASTORE_K8S_CACHE") or os.path.expanduser("~/.cache/datastore-kubernetes")
IMAGES = os.path.join(CACHE, "images")
PREFIX = "localhost/datastore-kubernetes/"
HOSTNAME = "image-smoke"

pytestmark = [
    pytest.mark.localenv,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and namespaces need root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing"),
]

# Runs in new mount, PID and network namespaces: what the runtime would provide (/proc, a
# few devices, a private /tmp, empty directories like a pod's emptyDir volumes, loopback
# up), then the command chrooted as the image's user.
RUNNER = r"""
set -e
root="$1"; user="$2"; empty_dirs="$3"; shift 3
# The root a mount of its own, as in a container: programs that look up the file system
# of a path (the JVM's FileStore) find it in /proc/self/mounts.
mount --bind "$root" "$root"
hostname "$HOSTNAME_IN_IMAGE"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m devtmp "$root/dev"
for dev in null zero full random urandom tty; do
  touch "$root/dev/$dev"
  mount --bind "/dev/$dev" "$root/dev/$dev"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=1777,size=512m tmp "$root/tmp"
for dir in $empty_dirs; do
  case "$dir" in /run/*|/var/lib/*|/var/log/*|/etc/*|/usr/share/*) ;; *) echo "bad dir $dir" >&2; exit 2 ;; esac
  mount -t tmpfs -o mode=0777,size=256m empty "$root$dir"
done
ip link set lo up
exec chroot --userspec="$user" "$root" "$@"
"""


class Image:
    """An unpacked image: its root file system and its runtime configuration."""

    def __init__(self, name: str, root: str, ref: str, config: dict):
        self.name, self.root, self.ref, self.config = name, root, ref, config

    @property
    def user(self) -> str:
        user = self.config.get("User") or "0"
        return user if ":" in user else user + ":" + user

    def run(self, argv: list[str], env: dict[str, str] | None = None, user: str | None = None,
            timeout: int = 120, entrypoint: bool = False,
            empty_dirs: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        environment = dict(item.split("=", 1) for item in self.config.get("Env", []))
        environment.update(env or {})
        command = list(self.config.get("Entrypoint") or []) + argv if entrypoint else argv
        # env, not a shell: a shell would drop variables named like settings (node.name).
        env_argv = ["/usr/bin/env", "-i", "-C", self.config.get("WorkingDir") or "/"]
        env_argv += ["%s=%s" % kv for kv in sorted(environment.items())]
        for path in empty_dirs:  # the runtime makes a volume's mount point
            target = _safe_target(self.root, path)
            if not os.path.isdir(target):
                os.makedirs(target)
        inner = env_argv + command
        return subprocess.run(
            ["unshare", "--mount", "--uts", "--pid", "--fork", "--net", "--propagation", "private",
             "env", "HOSTNAME_IN_IMAGE=" + HOSTNAME, "sh", "-c", RUNNER, "runner", self.root, user or self.user, " ".join(empty_dirs)] + inner,
            capture_output=True, text=True, timeout=timeout, check=False)

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(["sh", "-c", script], **kwargs)


def _safe_target(root: str, name: str) -> str:
    """The host path of a layer entry, refusing one that leaves root or crosses a link."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise AssertionError("layer entry %r leaves the root file system" % name)
    path = root
    for part in parts[:-1]:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise AssertionError("layer entry %r passes through the link %s" % (name, path))
    return os.path.join(root, *parts) if parts else root


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def unpack(archive: str, root: str) -> tuple[str, dict]:
    with tarfile.open(archive) as oci:
        def blob(digest: str):
            return oci.extractfile("blobs/sha256/" + digest.split(":", 1)[1])

        index = json.load(oci.extractfile("index.json"))
        (descriptor,) = index["manifests"]
        manifest = json.load(blob(descriptor["digest"]))
        config = json.load(blob(manifest["config"]["digest"]))
        for layer in manifest["layers"]:
            with gzip.open(blob(layer["digest"])) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    target = _safe_target(root, member.name)
                    base = os.path.basename(target)
                    if base == ".wh..wh..opq":
                        for child in os.listdir(os.path.dirname(target)):
                            _remove(os.path.join(os.path.dirname(target), child))
                        continue
                    if base.startswith(".wh."):
                        _remove(os.path.join(os.path.dirname(target), base[4:]))
                        continue
                    if not (member.isdir() and os.path.isdir(target) and not os.path.islink(target)):
                        _remove(target)
                    tar.extract(member, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")
    return descriptor["annotations"]["io.containerd.image.name"], config["config"]


@pytest.fixture(scope="module")
def image(request):
    name = request.param
    archive = os.path.join(IMAGES, name + ".tar")
    if not os.path.isfile(archive):
        pytest.skip("%s is not built: run tools/localenv/images/build.sh %s" % (archive, name))
    root = tempfile.mkdtemp(prefix="dk-image-%s-" % name)
    os.chmod(root, 0o755)  # a runtime's root directory, not mkdtemp's private one
    try:
        ref, config = unpack(archive, root)
        # What a runtime writes into every container: its host name and hosts file.
        for rel, text in (("etc/hostname", HOSTNAME + "\n"),
                          ("etc/hosts", "127.0.0.1\tlocalhost %s\n::1\tlocalhost\n" % HOSTNAME)):
            target = _safe_target(root, rel)
            _remove(target)
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text)
        yield Image(name, root, ref, config)
    finally:
        shutil.rmtree(root)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
        result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout + result.stderr


# --------------------------------------------------------------------------- tools

@pytest.mark.parametrize("image", ["tools"], indirect=True)
def test_tools_image_has_the_clients(image):
    assert image.ref == PREFIX + "tools:1"
    assert image.user == "65534:65534"
    out = _ok(image.sh("psql --version; pg_isready --version; cqlsh --version; curl --version;"
                       " dig -v; ip -V; nc -h 2>&1 | head -1; id -u"))
    assert "psql (PostgreSQL) 17." in out
    assert "cqlsh 6.2.2" in out
    assert "curl " in out and "DiG 9." in out and "iproute2" in out and "OpenBSD netcat" in out
    assert out.strip().endswith("65534")


@pytest.mark.parametrize("image", ["tools"], indirect=True)
def test_tools_image_clients_reach_a_server(image):
    # curl and nc against a listener inside the image's own network namespace.
    out = _ok(image.sh(
        "mkdir -p /tmp/www && echo hello-from-nc > /tmp/www/msg &&"
        " (nc -l 127.0.0.1 8099 < /tmp/www/msg &) && sleep 0.5 &&"
        " nc -w 2 127.0.0.1 8099 </dev/null"))
    assert "hello-from-nc" in out
    # The CQL driver's libev event loop is what cqlsh uses on this Python (no asyncore).
    out = _ok(image.sh("python3 -c 'import cassandra.io.libevreactor as r, cassandra;"
                       " print(cassandra.__version__, r.LibevConnection.__name__)'"))
    assert "3.29" in out and "LibevConnection" in out


# --------------------------------------------------------------------------- postgres

# Starts the image's entrypoint in the background, waits (bounded) until the server takes
# TCP connections on loopback, runs the checks, then stops it with the image's stop signal.
POSTGRES_RUN = r"""
docker-entrypoint.sh postgres -c listen_addresses=127.0.0.1 >/tmp/server.log 2>&1 &
server=$!
tries=0
until pg_isready -q -h 127.0.0.1 -p 5432 -U "${POSTGRES_USER:-postgres}"; do
  tries=$((tries + 1))
  if [ $tries -gt 240 ] || ! kill -0 $server 2>/dev/null; then cat /tmp/server.log; exit 1; fi
  sleep 0.5
done
status=0
( %s ) || status=$?
kill -INT $server
wait $server || true
cat /tmp/server.log
exit $status
"""


@pytest.mark.parametrize("image", ["postgres"], indirect=True)
def test_postgres_image_layout(image):
    assert image.ref == PREFIX + "postgres:17-2"
    assert image.config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert image.config["Cmd"] == ["postgres"]
    env = dict(item.split("=", 1) for item in image.config["Env"])
    assert env["PGDATA"] == "/var/lib/postgresql/data"
    assert "/usr/lib/postgresql/17/bin" in env["PATH"].split(":")
    out = _ok(image.sh("postgres --version; id postgres; stat -c '%a %u:%g' /var/run/postgresql",
                       user="0:0"))
    assert "postgres (PostgreSQL) 17." in out
    assert "uid=999(postgres) gid=999(postgres)" in out
    assert "3777 999:999" in out


@pytest.mark.parametrize("image", ["postgres"], indirect=True)
def test_postgres_image_initialises_and_serves(image):
    initdb_d = os.path.join(image.root, "docker-entrypoint-initdb.d")
    with open(os.path.join(initdb_d, "10-marker.sql"), "w", encoding="utf-8") as fh:
        fh.write("CREATE TABLE init_marker (note text); INSERT INTO init_marker VALUES ('from initdb.d');\n")
    try:
        checks = (
            "export PGPASSWORD=s3cret-test;"
            " psql -h 127.0.0.1 -U admin -d app -Atc 'SELECT 1' &&"
            " psql -h 127.0.0.1 -U admin -d app -Atc 'SELECT note FROM init_marker' &&"
            " psql -h 127.0.0.1 -U admin -d app -Atc 'SELECT current_user, version()' &&"
            " psql -h 127.0.0.1 -U admin -d app -Atc"
            " \"SELECT 'scram ' || (rolpassword LIKE 'SCRAM-SHA-256\\$%') FROM pg_authid WHERE rolname = 'admin'\" &&"
            " tail -n 1 \"$PGDATA/pg_hba.conf\" &&"
            " stat -c 'owner %u' \"$PGDATA\"")
        # Started as root, like the official image: it hands PGDATA to postgres and drops to it.
        out = _ok(image.run(["sh", "-c", POSTGRES_RUN % checks], user="0:0", empty_dirs=("/run/postgresql",), env={
            "POSTGRES_USER": "admin", "POSTGRES_PASSWORD": "s3cret-test", "POSTGRES_DB": "app",
            "PGDATA": "/var/lib/postgresql/data/pgdata"}))
    finally:
        os.unlink(os.path.join(initdb_d, "10-marker.sql"))
    lines = out.splitlines()
    assert "1" in lines
    assert "from initdb.d" in lines
    assert any(line.startswith("admin|PostgreSQL 17.") for line in lines)
    assert "owner 999" in lines
    # The password is set and required from any host but loopback (which initdb trusts,
    # as in the official image).
    assert "scram true" in lines
    assert "host all all all scram-sha-256" in lines
    assert "PostgreSQL init process complete; ready for start up." in out


@pytest.mark.parametrize("image", ["postgres"], indirect=True)
def test_postgres_image_runs_as_any_uid(image):
    # An arbitrary UID without a passwd entry (OpenShift-style): initdb still runs.
    out = _ok(image.run(["sh", "-c", POSTGRES_RUN % "PGPASSWORD=pw psql -h 127.0.0.1 -U postgres -Atc 'SELECT 40 + 2'"],
                        user="123456:0", empty_dirs=("/run/postgresql",),
                        env={"POSTGRES_PASSWORD": "pw", "PGDATA": "/tmp/pgdata"}))
    assert "42" in out.splitlines()


@pytest.mark.parametrize("image", ["postgres"], indirect=True)
def test_postgres_image_refuses_to_initialise_without_a_password(image):
    result = image.run(["postgres"], entrypoint=True, env={"PGDATA": "/tmp/pgdata-nopw"})
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


# --------------------------------------------------------------------------- cassandra

# Polls (bounded) until COMMAND succeeds while the background server (pid $server) lives.
WAIT_FOR = r"""
tries=0
until %s >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ $tries -gt %d ] || ! kill -0 $server 2>/dev/null; then echo "SERVER NOT READY"; cat /tmp/server.log; exit 1; fi
  sleep 1
done
"""


@pytest.mark.parametrize("image", ["cassandra"], indirect=True)
def test_cassandra_image_layout(image):
    assert image.ref == PREFIX + "cassandra:5.0-2"
    assert image.config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert image.config["Cmd"] == ["cassandra", "-f"]
    out = _ok(image.sh("java -version 2>&1; java -cp '/opt/cassandra/lib/*' org.apache.cassandra.tools.GetVersion;"
                       " id cassandra; for p in nodetool cqlsh sstableloader rclone; do command -v $p; done; cqlsh --version;"
                       " rclone version; ls -ld /etc/cassandra",
                       user="0:0"))
    assert 'openjdk version "17.' in out
    assert "\n5.0.4\n" in out
    assert "uid=999(cassandra) gid=999(cassandra)" in out
    assert "/opt/cassandra/bin/nodetool" in out and "cqlsh 6.2.2" in out
    # The backup role's Jobs: rclone ships snapshots, sstableloader loads them (tag 5.0-2).
    assert "/opt/cassandra/bin/sstableloader" in out and "/usr/bin/rclone" in out and "rclone v1." in out


@pytest.mark.parametrize("image", ["cassandra"], indirect=True)
def test_cassandra_image_starts_a_node_configured_from_the_environment(image):
    script = (
        "docker-entrypoint.sh cassandra -f >/tmp/server.log 2>&1 &\nserver=$!\n"
        + WAIT_FOR % ("cqlsh 127.0.0.1 -e 'SELECT now() FROM system.local'", 240)
        + "cqlsh 127.0.0.1 -e \"SELECT cluster_name, data_center, rack FROM system.local;"
          " CREATE KEYSPACE smoke WITH replication = {'class': 'NetworkTopologyStrategy', 'dc-test': 1};"
          " CREATE TABLE smoke.t (k int PRIMARY KEY, v text); INSERT INTO smoke.t (k, v) VALUES (1, 'written');"
          " SELECT v FROM smoke.t WHERE k = 1;\"\n"
          "nodetool status\nnodetool drain\nkill $server; wait $server || true\n")
    out = _ok(image.run(["bash", "-c", script], user="999:999", timeout=420, env={
        "MAX_HEAP_SIZE": "512M", "HEAP_NEWSIZE": "128M", "CASSANDRA_LISTEN_ADDRESS": "127.0.0.1",
        "CASSANDRA_SEEDS": "127.0.0.1", "CASSANDRA_CLUSTER_NAME": "smoke-cluster", "CASSANDRA_DC": "dc-test",
        "CASSANDRA_RACK": "rack-test", "CASSANDRA_ENDPOINT_SNITCH": "GossipingPropertyFileSnitch",
        "CASSANDRA_NUM_TOKENS": "8"}))
    assert "SERVER NOT READY" not in out
    assert "smoke-cluster |     dc-test | rack-test" in out
    assert "written" in out
    assert any(line.startswith("UN  127.0.0.1") for line in out.splitlines())
    assert "Datacenter: dc-test" in out


# --------------------------------------------------------------------------- elasticsearch

HTTP_GET = ('bash -c \'exec 3<>/dev/tcp/127.0.0.1/9200 && printf "GET %s HTTP/1.0\\r\\n\\r\\n" >&3'
            ' && cat <&3\'')


@pytest.mark.parametrize("image", ["elasticsearch"], indirect=True)
def test_elasticsearch_image_layout(image):
    assert image.ref == PREFIX + "elasticsearch:8.18"
    assert image.user == "1000:0"
    out = _ok(image.sh("elasticsearch --version 2>&1; stat -c '%U %u:%g %a' config data logs; id -u"))
    assert "Version: 8.18.0" in out
    assert out.count("elasticsearch 1000:0 775") == 3


@pytest.mark.parametrize("image", ["elasticsearch"], indirect=True)
def test_elasticsearch_image_forms_a_cluster_with_bootstrap_checks_enforced(image):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    script = (
        "/usr/local/bin/docker-entrypoint.sh >/tmp/server.log 2>&1 &\nserver=$!\n"
        + WAIT_FOR % (HTTP_GET % "/_cluster/health?wait_for_status=green&timeout=1s" + " | grep -q '\"status\":\"green\"'", 240)
        + HTTP_GET % "/_cluster/health" + "\necho\n"
        + 'bash -c \'exec 3<>/dev/tcp/127.0.0.1/9200 && printf "PUT /smoke/_doc/1?refresh=true HTTP/1.0\\r\\n'
          'Content-Type: application/json\\r\\nContent-Length: 18\\r\\n\\r\\n{\\"note\\":\\"indexed\\"}" >&3 && cat <&3\'\necho\n'
        + HTTP_GET % "/smoke/_doc/1" + "\necho\nkill $server; wait $server || true\ncat /tmp/server.log\n")
    out = _ok(image.run(["bash", "-c", script], timeout=420, env={
        "ES_JAVA_OPTS": "-Xms512m -Xmx512m -Des.enforce.bootstrap.checks=true",
        "node.name": "smoke-0", "cluster.name": "smoke", "cluster.initial_master_nodes": "smoke-0",
        "network.host": "127.0.0.1", "xpack.security.enabled": "false", "node.store.allow_mmap": "false"}))
    assert "SERVER NOT READY" not in out
    assert '"cluster_name":"smoke"' in out and '"status":"green"' in out
    assert '"note":"indexed"' in out
    assert "bootstrap checks failed" not in out
    if hard < 65535:
        assert "TEST IMAGE: the open-files hard limit is %d" % hard in out


# --------------------------------------------------------------------------- log collector

@pytest.mark.parametrize("image", ["syslog-ng"], indirect=True)
def test_log_collector_image_ships_file_lines_as_json(image):
    script = r"""
mkdir -p /var/log/containers/pod-a
echo 'first line before start' >/var/log/containers/pod-a/app.log
log-collector >/tmp/server.log 2>&1 &
server=$!
""" + WAIT_FOR % ("log-collector healthcheck", 60) + r"""
echo 'second line after start' >>/var/log/containers/pod-a/app.log
echo 'a line of another pod' >/var/log/containers/pod-b.log
""" + WAIT_FOR % ("[ $(wc -l </tmp/out/records.json) -ge 3 ]", 60) + r"""
log-collector healthcheck && echo HEALTHY
kill $server; wait $server || true
cat /tmp/out/records.json
"""
    out = _ok(image.run(["bash", "-c", script], empty_dirs=("/var/log/containers", "/var/lib/syslog-ng"),
                        env={"NODE_NAME": "node-smoke", "LOG_COLLECTOR_FILE": "/tmp/out/records.json",
                             "LOG_COLLECTOR_STDOUT": "off"}))
    assert "SERVER NOT READY" not in out
    assert "HEALTHY" in out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_log = {record["log"]: record for record in records}
    assert set(by_log) >= {"first line before start", "second line after start", "a line of another pod"}
    assert by_log["second line after start"]["file"] == "/var/log/containers/pod-a/app.log"
    assert by_log["a line of another pod"]["file"] == "/var/log/containers/pod-b.log"
    assert {record["node"] for record in records} == {"node-smoke"}
