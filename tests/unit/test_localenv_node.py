"""The real node's own scripts: the OCI packer and the iptables cleanup (pure, no servers)."""

from __future__ import annotations

import io
import json
import os
import tarfile

from testlib.localenv import node_script

cleanup = node_script("cleanup")
oci_archive = node_script("oci_archive")

PREFIXES = ["KUBE-", "CNI-", "DSK8S-"]


def _rootfs(base):
    root = base / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "bin" / "tool", 0o755)
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("box\n")
    os.symlink("/bin/tool", root / "bin" / "alias")
    os.symlink("/etc", root / "etc-link")  # a link to a directory: stored as a link, not followed
    return root


def _blobs(path):
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile("index.json"))
        blobs = {m.name.rsplit("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers()
                 if m.name.startswith("blobs/")}
    return index, blobs


def test_same_input_gives_the_same_image(tmp_path):
    root = _rootfs(tmp_path)
    first = oci_archive.archive(str(tmp_path / "a.tar"), "localhost/x/box:1", {"Cmd": ["sh"]}, [str(root)])
    os.utime(root / "etc" / "hostname", (1, 1))  # a new timestamp changes nothing
    second = oci_archive.archive(str(tmp_path / "b.tar"), "localhost/x/box:1", {"Cmd": ["sh"]}, [str(root)])
    assert first == second
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_the_archive_is_an_oci_layout_naming_the_image(tmp_path):
    root = _rootfs(tmp_path)
    digest = oci_archive.archive(str(tmp_path / "a.tar"), "localhost/x/box:1", {"Cmd": ["sh"], "User": "1000"},
                                 [str(root)])
    index, blobs = _blobs(tmp_path / "a.tar")
    entry = index["manifests"][0]
    assert entry["digest"] == digest
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/x/box:1"
    manifest = json.loads(blobs[digest.split(":")[1]])
    config = json.loads(blobs[manifest["config"]["digest"].split(":")[1]])
    assert config["config"] == {"Cmd": ["sh"], "User": "1000"}
    assert config["rootfs"]["diff_ids"] == [manifest["layers"][0]["digest"]]
    assert oci_archive.listing(str(tmp_path / "a.tar")) == ["localhost/x/box:1 " + digest]


def test_a_layer_holds_files_links_and_modes_with_numeric_owners_and_no_times(tmp_path):
    root = _rootfs(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(oci_archive.layer(str(root)))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("bin/tool").read() == b"#!/bin/sh\necho hi\n"
    assert sorted(members) == ["bin", "bin/alias", "bin/tool", "etc", "etc-link", "etc/hostname"]
    assert members["bin/tool"].mode == 0o755
    assert members["bin/alias"].issym() and members["bin/alias"].linkname == "/bin/tool"
    assert members["etc-link"].issym() and members["etc-link"].linkname == "/etc"
    assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in members.values())


RULES = """-P INPUT ACCEPT
-P FORWARD ACCEPT
-N DSK8S-FORWARD
-N KUBE-FORWARD
-N OTHER
-A INPUT -j OTHER
-A FORWARD -j DSK8S-FORWARD
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A DSK8S-FORWARD -i dsk8s0 -o dsk8s0 -j RETURN
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
-A OTHER -g KUBE-FORWARD
-A OTHER -j ACCEPT""".splitlines()


def test_iptables_cleanup_removes_our_chains_and_the_jumps_into_them_only():
    script = cleanup.restore_script(RULES, "filter", PREFIXES).splitlines()
    assert script[0] == "*filter" and script[-1] == "COMMIT"
    # Our chains are emptied, then deleted after every jump into them is gone.
    assert script[1:3] == [":DSK8S-FORWARD - [0:0]", ":KUBE-FORWARD - [0:0]"]
    assert script[-3:-1] == ["-X DSK8S-FORWARD", "-X KUBE-FORWARD"]
    assert set(script[3:-3]) == {
        "-D FORWARD -j DSK8S-FORWARD",
        '-D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        "-D OTHER -g KUBE-FORWARD",
    }
    assert not any("OTHER -j ACCEPT" in line or "INPUT -j OTHER" in line for line in script)


def test_iptables_cleanup_of_a_table_without_our_chains_does_nothing():
    script = cleanup.restore_script(["-P OUTPUT ACCEPT", "-A OUTPUT -j ACCEPT"], "filter", PREFIXES)
    assert script == "*filter\nCOMMIT\n"
