"""The OCI packer of the local environment's images (tools/localenv/images/ocipack.py)."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import tarfile

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "localenv", "images", "ocipack.py")
_spec = importlib.util.spec_from_file_location("ocipack", _PATH)
ocipack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ocipack)

EPOCH = 1700000000


def _tree(root, files, links=(), dirs=()):
    for rel in dirs:
        os.makedirs(os.path.join(root, rel), exist_ok=True)
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(data)
    for rel, target in links:
        os.symlink(target, os.path.join(root, rel))


def _members(layer):
    with gzip.open(layer) as stream, tarfile.open(fileobj=stream) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_full_layer_stores_links_unfollowed_and_clamps_times(tmp_path):
    root = tmp_path / "root"
    _tree(str(root), {"etc/hello": "hi\n", "run/keep": ""}, links=[("var-run", "/run")], dirs=["dev"])
    os.utime(root / "etc" / "hello", (EPOCH + 500, EPOCH + 500))
    desc = ocipack.write_layer(str(root), str(tmp_path / "l.tar.gz"), None, EPOCH)
    members = _members(tmp_path / "l.tar.gz")
    assert members["var-run"].issym() and members["var-run"].linkname == "/run"
    assert members["etc/hello"].mtime == EPOCH
    assert members["etc/hello"].uname == "" and members["etc/hello"].uid == os.getuid()
    assert "dev" in members
    assert desc["whiteouts"] == 0
    with gzip.open(tmp_path / "l.tar.gz") as stream:
        assert desc["diff_id"] == "sha256:" + hashlib.sha256(stream.read()).hexdigest()


def test_same_tree_gives_the_same_layer_bytes(tmp_path):
    digests = set()
    for name in ("a", "b"):
        root = tmp_path / name
        _tree(str(root), {"x/1": "one", "x/2": "two", "y": "why"})
        digests.add(ocipack.write_layer(str(root), str(tmp_path / (name + ".tar.gz")), None, EPOCH)["digest"])
    assert len(digests) == 1


def test_layer_over_a_base_holds_only_the_difference(tmp_path):
    base, new = tmp_path / "base", tmp_path / "new"
    _tree(str(base), {"same": "s", "changed": "old", "gone": "g", "olddir/f": "f"})
    _tree(str(new), {"same": "s", "changed": "new", "added/f": "a"})
    os.link(new / "added" / "f", new / "added-link")
    desc = ocipack.write_layer(str(new), str(tmp_path / "d.tar.gz"), str(base), EPOCH)
    members = _members(tmp_path / "d.tar.gz")
    assert set(members) == {"changed", "added", "added/f", "added-link", ".wh.gone", ".wh.olddir"}
    # A hard-linked pair is stored whole: one file and a link to it inside the layer.
    # (sorted: "added-link" comes before "added/f")
    assert members["added-link"].isfile()
    assert members["added/f"].islnk() and members["added/f"].linkname == "added-link"
    assert desc["whiteouts"] == 2


def test_image_archive_is_an_oci_layout(tmp_path):
    root = tmp_path / "root"
    _tree(str(root), {"bin/tool": "#!/bin/sh\n"})
    layer = str(tmp_path / "l.tar.gz")
    desc = ocipack.write_layer(str(root), layer, None, EPOCH)
    with open(layer + ".json", "w", encoding="utf-8") as fh:
        json.dump(desc, fh)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"Cmd": ["/bin/tool"], "User": "65534:65534"}))
    result = ocipack.write_image(str(tmp_path / "img.tar"), "localhost/x/tool:1", str(config), [layer], EPOCH)
    with tarfile.open(tmp_path / "img.tar") as tar:
        assert json.load(tar.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        index = json.load(tar.extractfile("index.json"))
        (entry,) = index["manifests"]
        assert entry["annotations"]["io.containerd.image.name"] == "localhost/x/tool:1"
        assert entry["digest"] == result["manifest"]
        manifest = json.load(tar.extractfile("blobs/sha256/" + entry["digest"].split(":")[1]))
        blob = tar.extractfile("blobs/sha256/" + manifest["config"]["digest"].split(":")[1]).read()
        assert hashlib.sha256(blob).hexdigest() == manifest["config"]["digest"].split(":")[1]
        image_config = json.loads(blob)
        assert image_config["rootfs"]["diff_ids"] == [desc["diff_id"]]
        assert image_config["config"]["User"] == "65534:65534"
        assert [layer["digest"] for layer in manifest["layers"]] == [desc["digest"]]


def test_image_needs_a_tag(tmp_path):
    with pytest.raises(SystemExit, match="NAME:TAG"):
        ocipack.write_image(str(tmp_path / "img.tar"), "localhost:5000/x/tool", "unused", [], EPOCH)
