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

pytestmark = [
    pytest.mark.localenv,
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and namespaces need root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is missing"),
]

# Runs in new mount, PID and network namespaces: what the runtime would provide (/proc, a
# few devices, a private /tmp, loopback up), then the command chrooted as the image's user.
RUNNER = r"""
set -e
root="$1"; user="$2"; shift 2
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m devtmp "$root/dev"
for dev in null zero full random urandom tty; do
  touch "$root/dev/$dev"
  mount --bind "/dev/$dev" "$root/dev/$dev"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=1777,size=512m tmp "$root/tmp"
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
            timeout: int = 120, entrypoint: bool = False) -> subprocess.CompletedProcess:
        environment = dict(item.split("=", 1) for item in self.config.get("Env", []))
        environment.update(env or {})
        command = list(self.config.get("Entrypoint") or []) + argv if entrypoint else argv
        env_argv = ["/usr/bin/env", "-i"] + ["%s=%s" % kv for kv in sorted(environment.items())]
        workdir = self.config.get("WorkingDir") or "/"
        inner = env_argv + ["sh", "-c", 'cd "$0" && exec "$@"', workdir] + command
        return subprocess.run(
            ["unshare", "--mount", "--pid", "--fork", "--net", "--propagation", "private",
             "sh", "-c", RUNNER, "runner", self.root, user or self.user] + inner,
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
