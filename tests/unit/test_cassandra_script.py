# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cassandra role's start-up script decides the seeds and assembles the configuration.

The script runs for real under bash with a stand-in ``cassandra`` that prints what it was started
with; a "live node" is a listener on 127.0.0.1 where the script looks for CQL. The real ring is
proven by molecule/cassandra (verify asks ``nodetool`` and ``cqlsh``) on the real node.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "roles", "cassandra", "files", "cassandra.sh")
# The headless Service's name: one that resolves to nothing (a new ring), and one that resolves to
# 127.0.0.1, where a test's listener plays a live node.
NEW_RING = "cassandra.db.invalid"
LIVE_RING = "localhost"


@pytest.fixture
def node(tmp_path):
    """Directories of a pod: the image's configuration, the role's ConfigMap, the volume; a stand-in binary."""
    image_conf, role_conf, data, bin_dir = (tmp_path / n for n in ("image-conf", "role-conf", "data", "bin"))
    for path in (image_conf, role_conf, data, bin_dir):
        path.mkdir()
    (image_conf / "jvm-server.options").write_text("-Xss256k\n")
    (role_conf / "cassandra.yaml").write_text(
        "seed_provider:\n- parameters:\n  - seeds: __SEEDS__\nlisten_address: __ADDRESS__\nbroadcast_address: __ADDRESS__\n")
    (role_conf / "cassandra-rackdc.properties").write_text("dc=dc1\nrack=rack1\n")
    stub = bin_dir / "cassandra"
    stub.write_text('#!/bin/sh\necho "ARGS:$*"\necho "JVM_EXTRA_OPTS:$JVM_EXTRA_OPTS"\n')
    stub.chmod(0o755)
    return tmp_path


def _run(node, hostname="cassandra-0", seed_count=1, service=NEW_RING, replace="", cql_port=None):
    seeds = ",".join("cassandra-%d.%s" % (i, service) for i in range(seed_count))
    env = {"PATH": "%s:%s" % (node / "bin", os.environ["PATH"]), "HOSTNAME": hostname, "POD_IP": "10.99.0.7",
           "CASSANDRA_SEEDS": seeds, "CASSANDRA_SERVICE": service, "CASSANDRA_CONF": str(node / "conf"),
           "CASSANDRA_ROLE_CONF": str(node / "role-conf"), "CASSANDRA_IMAGE_CONF": str(node / "image-conf"),
           "CASSANDRA_REPLACE_ADDRESSES": replace, "CASSANDRA_DATA": str(node / "data"),
           "CASSANDRA_CQL_PORT": str(cql_port or _unused_port())}
    proc = subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def _unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_first_seed_founds_the_ring_when_no_address_resolves(node):
    # A new ring: the Service has no address yet, so the lookup answers nothing (and must not fail).
    proc = _run(node)
    assert proc.stdout.splitlines() == ["ARGS:-f", "JVM_EXTRA_OPTS:"]
    assert "founding the ring" in proc.stderr
    conf = (node / "conf" / "cassandra.yaml").read_text()
    assert "seeds: cassandra-0.%s\n" % NEW_RING in conf
    assert "listen_address: 10.99.0.7" in conf and "broadcast_address: 10.99.0.7" in conf
    # The image's configuration is kept beside the role's.
    assert (node / "conf" / "jvm-server.options").read_text() == "-Xss256k\n"
    assert (node / "conf" / "cassandra-rackdc.properties").read_text() == "dc=dc1\nrack=rack1\n"


def test_an_empty_seed_bootstraps_from_a_live_ring(node):
    with socket.socket() as listener:  # a node of the ring, serving CQL at 127.0.0.1
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        proc = _run(node, service=LIVE_RING, cql_port=listener.getsockname()[1])
    assert "bootstrapping from it instead of seeding" in proc.stderr
    assert "seeds: 127.0.0.1\n" in (node / "conf" / "cassandra.yaml").read_text()


def test_the_other_seeds_stay_when_an_empty_seed_leaves_itself_out(node):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        _run(node, hostname="cassandra-1", seed_count=2, service=LIVE_RING, cql_port=listener.getsockname()[1])
    assert "seeds: cassandra-0.%s,127.0.0.1\n" % LIVE_RING in (node / "conf" / "cassandra.yaml").read_text()


def test_a_seed_with_data_keeps_its_seeds(node):
    (node / "data" / "data" / "system").mkdir(parents=True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        proc = _run(node, service=LIVE_RING, cql_port=listener.getsockname()[1])
    assert "seeds: cassandra-0.%s\n" % LIVE_RING in (node / "conf" / "cassandra.yaml").read_text()
    assert "bootstrapping" not in proc.stderr


def test_a_named_replacement_applies_to_its_ordinal_with_an_empty_volume_only(node):
    proc = _run(node, hostname="cassandra-2", replace="1=10.99.0.3,2=10.99.0.4")
    assert "JVM_EXTRA_OPTS: -Dcassandra.replace_address_first_boot=10.99.0.4" in proc.stdout
    (node / "data" / "data" / "system").mkdir(parents=True)
    proc = _run(node, hostname="cassandra-2", replace="1=10.99.0.3,2=10.99.0.4")
    assert "replace_address" not in proc.stdout
