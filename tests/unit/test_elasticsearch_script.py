# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The elasticsearch role's start-up script decides on cluster.initial_master_nodes.

The script runs for real under bash; Elasticsearch is replaced by recorded HTTP answers (a local
server on 127.0.0.1) and by a stand-in ``bin/elasticsearch`` that prints the arguments it got.
The real cluster is proven by tests/integration/test_datastores_real.py.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "roles", "elasticsearch", "files", "elasticsearch.sh")
MASTERS = "elasticsearch-0,elasticsearch-1,elasticsearch-2"

# What GET /_cluster/state/metadata?filter_path=metadata.cluster_uuid answers before and after the
# node joined a cluster.
STATE = "/_cluster/state/metadata"
UNFORMED = '{"metadata":{"cluster_uuid":"_na_"}}'
FORMED = '{"metadata":{"cluster_uuid":"t1yv9ZqvQ1Wmy5bJm0q3Xw"}}'
HEALTH = json.dumps({"cluster_name": "datastore", "status": "green", "number_of_nodes": 3})
NO_MASTER = json.dumps({"error": {"type": "master_not_discovered_exception"}, "status": 503})


class _Node(http.server.BaseHTTPRequestHandler):
    answers = {}

    def do_GET(self):  # noqa: N802 - the http.server hook
        path, _sep, query = self.path.partition("?")
        if path == STATE and "local=true" not in query:
            raise AssertionError("the cluster state must be asked locally: %s" % self.path)
        status, body = self.answers.get(path, (404, "{}"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def node():
    """A recorded Elasticsearch node on 127.0.0.1; set its answers by path."""
    answers = {}
    handler = type("Node", (_Node,), {"answers": answers})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], answers
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def home(tmp_path):
    bin_dir = tmp_path / "es" / "bin"
    bin_dir.mkdir(parents=True)
    (tmp_path / "es" / "data").mkdir()
    stub = bin_dir / "elasticsearch"
    stub.write_text('#!/bin/sh\necho "ARGS:$*"\n')
    stub.chmod(0o755)
    return tmp_path / "es"


def _run(home, port, *args, service="localhost"):
    env = {"PATH": os.environ["PATH"], "ES_HOME": str(home), "ES_HTTP_PORT": str(port), "ES_SERVICE": service,
           "ES_INITIAL_MASTER_NODES": MASTERS, "POD_IP": "10.99.0.7"}
    return subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def _unused_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_first_formation_gets_the_initial_masters(home, node):
    port, answers = node
    answers[STATE] = (200, UNFORMED)
    proc = _run(home, port, "start")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ARGS:-Ecluster.initial_master_nodes=" + MASTERS


def test_nobody_answering_is_a_first_formation(home):
    proc = _run(home, _unused_port(), "start")
    assert proc.stdout.strip() == "ARGS:-Ecluster.initial_master_nodes=" + MASTERS


def test_a_formed_cluster_elsewhere_means_no_initial_masters(home, node):
    port, answers = node
    answers[STATE] = (200, FORMED)
    proc = _run(home, port, "start")
    assert proc.stdout.strip() == "ARGS:"
    assert "belongs to a formed cluster" in proc.stderr


def test_a_node_that_saw_the_cluster_formed_never_bootstraps_again(home):
    (home / "data" / ".datastore-cluster-formed").touch()
    proc = _run(home, _unused_port(), "start", service="nothing.invalid")
    assert proc.stdout.strip() == "ARGS:"


def test_ready_records_the_formed_cluster(home, node):
    port, answers = node
    mark = home / "data" / ".datastore-cluster-formed"
    answers["/_cluster/health"] = (503, NO_MASTER)
    answers[STATE] = (200, UNFORMED)
    assert _run(home, port, "ready").returncode != 0
    assert not mark.exists()

    answers["/_cluster/health"] = (200, HEALTH)
    assert _run(home, port, "ready").returncode == 0
    assert not mark.exists()

    answers[STATE] = (200, FORMED)
    assert _run(home, port, "ready").returncode == 0
    assert mark.exists()


def test_ready_fails_when_nothing_answers(home):
    assert _run(home, _unused_port(), "ready").returncode != 0
