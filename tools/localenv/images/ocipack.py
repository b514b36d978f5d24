"""Pack root file systems into OCI image archives without a container daemon.

Two steps, so that a layer shared by several images is packed once:

  ocipack.py layer ROOTFS OUT.tar.gz [--base BASE_ROOTFS] [--epoch SECONDS]
      Writes one gzip-compressed layer of ROOTFS and prints its description (JSON).
      With --base, the layer holds only what differs from BASE_ROOTFS (new and changed
      entries, and whiteouts for removed ones), to be stacked on BASE_ROOTFS's layer.

  ocipack.py image --out ARCHIVE.tar --ref NAME:TAG --config CONFIG.json LAYER.tar.gz...
      Writes an oci-layout archive (what `ctr images import` reads) with the layers in
      order and CONFIG.json as the image's runtime configuration (Entrypoint, Env, ...).

The output is reproducible: entries are sorted, owners are numeric, times are clamped
to --epoch, gzip headers carry no time. Symbolic links are stored, never followed, so a
root file system's absolute links (var/run -> /run) cannot lead outside it.
Only the standard library is used.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

# Directories whose contents belong to the runtime, not to the image.
RUNTIME_DIRS = ("dev", "proc", "sys")
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


class _HashingWriter(io.RawIOBase):
    """A sink that hashes what is written and passes it on."""

    def __init__(self, sink):
        super().__init__()
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self):
        return True

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)


def _walk(root: str):
    """Yield (relative path, lstat) for every entry under root, without following links."""
    pending = [""]
    while pending:
        rel = pending.pop()
        full = os.path.join(root, rel) if rel else root
        for name in os.listdir(full):
            child = os.path.join(rel, name) if rel else name
            st = os.lstat(os.path.join(root, child))
            yield child, st
            if stat.S_ISDIR(st.st_mode) and child not in RUNTIME_DIRS:
                pending.append(child)


def _entries(root: str) -> dict[str, os.stat_result]:
    return dict(_walk(root))


def _same(root: str, base: str, rel: str, st: os.stat_result, bst: os.stat_result) -> bool:
    """Whether rel is identical in root and base (type, mode, owner, content or target)."""
    if stat.S_IFMT(st.st_mode) != stat.S_IFMT(bst.st_mode):
        return False
    if (st.st_mode, st.st_uid, st.st_gid) != (bst.st_mode, bst.st_uid, bst.st_gid):
        return False
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(os.path.join(root, rel)) == os.readlink(os.path.join(base, rel))
    if stat.S_ISREG(st.st_mode):
        if st.st_size != bst.st_size:
            return False
        with open(os.path.join(root, rel), "rb") as a, open(os.path.join(base, rel), "rb") as b:
            while True:
                ca, cb = a.read(1 << 20), b.read(1 << 20)
                if ca != cb:
                    return False
                if not ca:
                    return True
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return st.st_rdev == bst.st_rdev
    return True


def _plan(root: str, base: str | None):
    """Return (paths to store, paths to white out), both sorted."""
    entries = _entries(root)
    if base is None:
        return sorted(entries), [], entries
    base_entries = _entries(base)
    keep = set()
    for rel, st in entries.items():
        bst = base_entries.get(rel)
        if bst is None or not _same(root, base, rel, st, bst):
            keep.add(rel)
    # A hard-linked group is stored whole, so the layer never links to a file it lacks.
    groups: dict[tuple[int, int], list[str]] = {}
    for rel, st in entries.items():
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
    for members in groups.values():
        if keep.intersection(members):
            keep.update(members)
    removed = []
    for rel in base_entries:
        if rel in entries:
            continue
        parent = os.path.dirname(rel)
        # Only the topmost removed entry needs a whiteout; its subtree goes with it.
        if parent and parent not in entries:
            continue
        removed.append(rel)
    return sorted(keep), sorted(removed), entries


def write_layer(root: str, out: str, base: str | None, epoch: int) -> dict:
    paths, removed, entries = _plan(root, base)
    with open(out + ".part", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            hashing = _HashingWriter(gz)
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                links: dict[tuple[int, int], str] = {}
                for rel in paths:
                    _add(tar, root, rel, entries[rel], epoch, links)
                for rel in removed:
                    info = tarfile.TarInfo(os.path.join(os.path.dirname(rel), ".wh." + os.path.basename(rel)))
                    info.mtime = epoch
                    info.mode = 0o644
                    tar.addfile(info)
    os.replace(out + ".part", out)
    return {
        "mediaType": LAYER_MEDIA_TYPE,
        "digest": "sha256:" + _file_sha256(out),
        "size": os.path.getsize(out),
        "diff_id": "sha256:" + hashing.digest.hexdigest(),
        "entries": len(paths),
        "whiteouts": len(removed),
    }


def _add(tar: tarfile.TarFile, root: str, rel: str, st: os.stat_result, epoch: int, links: dict) -> None:
    mode = st.st_mode
    if stat.S_ISSOCK(mode):
        return
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = min(int(st.st_mtime), epoch)
    full = os.path.join(root, rel)
    if stat.S_ISREG(mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
        info.type = tarfile.LNKTYPE
        info.linkname = links[(st.st_dev, st.st_ino)]
        tar.addfile(info)
        return
    if stat.S_ISREG(mode):
        if st.st_nlink > 1:
            links[(st.st_dev, st.st_ino)] = rel
        info.size = st.st_size
        with open(full, "rb") as fh:
            tar.addfile(info, fh)
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
        tar.addfile(info)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_image(out: str, ref: str, config_path: str, layer_paths: list[str], epoch: int) -> dict:
    if ":" not in ref.rsplit("/", 1)[-1]:
        raise SystemExit("ocipack: --ref must be NAME:TAG, got %r" % ref)
    with open(config_path, encoding="utf-8") as fh:
        runtime = json.load(fh)
    layers = []
    for path in layer_paths:
        with open(path + ".json", encoding="utf-8") as fh:
            layers.append(json.load(fh))
    created = "%sZ" % _iso(epoch)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
        "history": [{"created": created, "created_by": "ocipack.py layer " + os.path.basename(p)}
                    for p in layer_paths],
    }
    config_blob = _json_bytes(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config_blob).hexdigest(), "size": len(config_blob)},
        "layers": [{"mediaType": layer["mediaType"], "digest": layer["digest"], "size": layer["size"]}
                   for layer in layers],
    }
    manifest_blob = _json_bytes(manifest)
    manifest_digest = "sha256:" + hashlib.sha256(manifest_blob).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_blob),
            "annotations": {"io.containerd.image.name": ref,
                            "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]},
        }],
    }
    with tarfile.open(out + ".part", "w", format=tarfile.GNU_FORMAT) as tar:
        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, epoch
            tar.addfile(info, io.BytesIO(data))

        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(info)

        add_bytes("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
        add_bytes("index.json", _json_bytes(index))
        add_dir("blobs")
        add_dir("blobs/sha256")
        seen = set()
        blobs = [(manifest_digest, manifest_blob, None), (manifest["config"]["digest"], config_blob, None)]
        blobs += [(layer["digest"], None, path) for layer, path in zip(layers, layer_paths)]
        for digest, data, path in blobs:
            if digest in seen:
                continue
            seen.add(digest)
            name = "blobs/sha256/" + digest.split(":", 1)[1]
            if data is not None:
                add_bytes(name, data)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = os.path.getsize(path), 0o644, epoch
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    os.replace(out + ".part", out)
    return {"ref": ref, "manifest": manifest_digest, "size": os.path.getsize(out),
            "layers": [layer["digest"] for layer in layers]}


def _iso(epoch: int) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    layer = sub.add_parser("layer", help="pack a root file system (or its difference from a base) as a layer")
    layer.add_argument("rootfs")
    layer.add_argument("out")
    layer.add_argument("--base")
    layer.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    image = sub.add_parser("image", help="write an oci-layout archive from packed layers")
    image.add_argument("--out", required=True)
    image.add_argument("--ref", required=True)
    image.add_argument("--config", required=True)
    image.add_argument("--epoch", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    image.add_argument("layers", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "layer":
        for path in (args.rootfs, args.base):
            if path is not None and not os.path.isdir(path):
                parser.error("%s is not a directory" % path)
        desc = write_layer(args.rootfs, args.out, args.base, args.epoch)
        with open(args.out + ".json", "w", encoding="utf-8") as fh:
            json.dump(desc, fh, sort_keys=True)
        print(json.dumps(desc, sort_keys=True))
    else:
        for path in args.layers:
            if not os.path.isfile(path + ".json"):
                parser.error("%s has no description %s.json: pack it with 'layer' first" % (path, path))
        print(json.dumps(write_image(args.out, args.ref, args.config, args.layers, args.epoch), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
