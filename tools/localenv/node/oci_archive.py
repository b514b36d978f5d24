"""Pack directories into an OCI image archive that `ctr images import` reads, without a daemon.

    oci_archive.py OUT.tar NAME:TAG CONFIG.json ROOT [ROOT...]
    oci_archive.py --list ARCHIVE.tar      print "NAME:TAG sha256:MANIFEST" for each image in it

Each ROOT becomes one uncompressed layer, in the order given. CONFIG.json holds the
image's run settings (Entrypoint, Cmd, Env, User, WorkingDir). Owners are numeric and
every timestamp is zero, so the same input gives the same digests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import sys
import tarfile


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar_info(root: str, path: str) -> tarfile.TarInfo:
    st = os.lstat(path)
    rel = os.path.relpath(path, root)
    info = tarfile.TarInfo(rel if rel != "." else ".")
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = 0
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    else:
        raise SystemExit("oci_archive: %s is neither a file, a directory nor a link" % path)
    return info


def layer(root: str) -> bytes:
    """An uncompressed tar of ``root``: sorted, numeric owners, zero times, never following a link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(root, followlinks=False):
            dirs.sort()
            if top != root:
                tar.addfile(_tar_info(root, top))
            for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(top, d))]):
                path = os.path.join(top, name)
                info = _tar_info(root, path)
                if info.isreg():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
    return buf.getvalue()


def archive(out: str, ref: str, run_config: dict, roots: list[str]) -> str:
    blobs = {}
    layers, diff_ids = [], []
    for root in roots:
        data = layer(root)
        digest = _digest(data)
        blobs[digest] = data
        diff_ids.append(digest)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
                       "size": len(data)})
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": run_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "oci_archive.py"} for _root in roots],
    }, sort_keys=True).encode()
    blobs[_digest(config)] = config
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": layers,
    }, sort_keys=True).encode()
    blobs[_digest(manifest)] = manifest
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
        "size": len(manifest),
        "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]},
    }]}, sort_keys=True).encode()
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for digest in sorted(blobs):
            add("blobs/sha256/" + digest.split(":", 1)[1], blobs[digest])
    os.replace(tmp, out)
    return _digest(manifest)


def listing(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        index = json.load(member) if member else {}
    return ["%s %s" % (m["annotations"]["io.containerd.image.name"], m["digest"])
            for m in index.get("manifests", []) if "io.containerd.image.name" in m.get("annotations", {})]


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "--list":
        print("\n".join(listing(argv[2])))
        return 0
    if len(argv) < 5 or ":" not in argv[2].rsplit("/", 1)[-1]:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out, ref, config_path, *roots = argv[1:]
    with open(config_path) as handle:
        run_config = json.load(handle)
    print("%s %s" % (ref, archive(out, ref, run_config, roots)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
