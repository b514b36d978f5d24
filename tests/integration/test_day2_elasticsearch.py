# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Day-2 operations on real Elasticsearch (the elasticsearch role, three nodes on the real node).

- ``rolling_update`` with ``engine: elasticsearch`` replaces the pods one at a time behind the gate
  (every node joined, cluster green; shard allocation at ``primaries`` while a pod is away); a client
  searching an index with one replica through a Service of the pods counts failed searches
  meanwhile (target 0); every document is there after; a re-run changes nothing;
- ``scale_down`` refuses an unsafe request (an index with 2 replicas on 3 nodes going to 2, and 0)
  with nothing changed, then goes from 3 nodes to 2 with every document kept, ends green, and
  leaves no exclusion behind.

Slow (the cluster's start and three restarts take several minutes): ``make reliability`` runs it,
``make test`` does not. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from testlib import created_namespace
from testlib.realnode import IMAGES, kubectl, placement, require_real_node, run_role, until

pytestmark = pytest.mark.slow

NAME = "elasticsearch"
PODS = ["elasticsearch-0", "elasticsearch-1", "elasticsearch-2"]
DOCS = 1000
INDEX = "kept"


def http(base, method, path, body=None, timeout=10):
    data = None
    headers = {"Content-Type": "application/json"}
    if body is not None:
        data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
        if isinstance(body, str):
            headers["Content-Type"] = "application/x-ndjson"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # nosec - the test's own cluster
        return json.loads(answer.read().decode("utf-8") or "null")


def pod_ip(localenv, ns, pod):
    return kubectl(localenv, "get", "pod", pod, "-n", ns, "-o", "jsonpath={.status.podIP}").stdout


def api(localenv, ns, pod="elasticsearch-0"):
    return "http://%s:9200" % pod_ip(localenv, ns, pod)


@pytest.fixture(scope="module")
def es_ns(localenv, kube):
    require_real_node(localenv)
    with created_namespace(kube, "day2-es-" + uuid.uuid4().hex[:8]) as name:
        yield name


@pytest.fixture(scope="module")
def cluster(localenv, es_ns):
    """Three nodes from the role, an index of DOCS documents with one replica, and a Service over the pods."""
    ns = es_ns
    probe = {"exec": {"command": ["bash", "/etc/elasticsearch-role/elasticsearch.sh", "ready"]}, "periodSeconds": 3,
             "timeoutSeconds": 5, "failureThreshold": 3}
    variables = dict(placement("elasticsearch"), elasticsearch_namespace=ns, elasticsearch_image=IMAGES["elasticsearch"],
                     elasticsearch_replicas=3, elasticsearch_heap_size="256m",
                     elasticsearch_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"),
                     elasticsearch_storage_size="512Mi",
                     elasticsearch_resources={"requests": {"cpu": "100m", "memory": "640Mi"},
                                              "limits": {"cpu": "1", "memory": "640Mi"}},
                     elasticsearch_readiness_probe=probe, elasticsearch_prestop_sleep_seconds=5,
                     elasticsearch_termination_grace_period_seconds=60, elasticsearch_wait_timeout=900,
                     # The test image needs the open-files shim on this node (docs/images.md).
                     elasticsearch_extra_env={"LD_PRELOAD": "/usr/local/lib/libnofile-shim.so"})
    run_role(localenv, "elasticsearch", variables)
    base = api(localenv, ns)
    until("three nodes, green", lambda: http(base, "GET", "/_cluster/health?wait_for_nodes=3&timeout=5s")
          ["status"] == "green", timeout=600)
    http(base, "PUT", "/" + INDEX, {"settings": {"number_of_shards": 3, "number_of_replicas": 1}})
    lines = []
    for doc in range(DOCS):
        lines.append(json.dumps({"index": {"_index": INDEX, "_id": str(doc)}}))
        lines.append(json.dumps({"n": doc, "text": "document %d" % doc}))
    answer = http(base, "POST", "/_bulk?refresh=true", "\n".join(lines) + "\n", timeout=120)
    assert answer["errors"] is False
    until("the index green", lambda: http(base, "GET", "/_cluster/health/%s?wait_for_status=green&timeout=5s"
                                          % INDEX)["status"] == "green")
    selector = json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o",
                                  "jsonpath={.spec.selector.matchLabels}").stdout)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "es-client", "namespace": ns},
               "spec": {"selector": selector, "ports": [{"name": "http", "port": 9200, "targetPort": 9200}]}}
    kubectl(localenv, "apply", "-f", "-", stdin=json.dumps(service))
    return {"ns": ns}


def service_url(localenv, ns):
    return "http://%s:9200" % kubectl(localenv, "get", "service", "es-client", "-n", ns, "-o",
                                      "jsonpath={.spec.clusterIP}").stdout


def docs_everywhere(localenv, ns):
    """Every document, counted through the API of each running node, and the sum of a field."""
    body = {"size": 0, "track_total_hits": True, "aggs": {"sum": {"sum": {"field": "n"}}}}
    for pod in running_pods(localenv, ns):
        answer = http(api(localenv, ns, pod), "POST", "/%s/_search" % INDEX, body)
        assert answer["_shards"]["failed"] == 0, answer["_shards"]
        assert answer["hits"]["total"]["value"] == DOCS
        assert answer["aggregations"]["sum"]["value"] == DOCS * (DOCS - 1) / 2


def running_pods(localenv, ns):
    out = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    return sorted(p["metadata"]["name"] for p in out if p["metadata"]["name"].startswith(NAME + "-")
                  and not p["metadata"].get("deletionTimestamp"))


def pod_state(localenv, ns):
    out = json.loads(kubectl(localenv, "get", "pods", "-n", ns, "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: (p["metadata"]["uid"], p["metadata"]["labels"].get("controller-revision-hash"))
            for p in out if p["metadata"]["name"] in PODS}


def sts_json(localenv, ns):
    return json.loads(kubectl(localenv, "get", "statefulset", NAME, "-n", ns, "-o", "json").stdout)


def cluster_settings(localenv, ns):
    answer = http(api(localenv, ns), "GET", "/_cluster/settings?flat_settings=true")
    return dict(answer.get("persistent") or {}, **(answer.get("transient") or {}))


class Searcher:
    """Searches the index through the Service every 0.1 s, a new connection each time; a search fails when
    it errs, a shard failed, or the count is not DOCS."""

    def __init__(self, base):
        self.base = base
        self.stop = threading.Event()
        self.results = []  # (time, ok, error)
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        body = {"size": 0, "track_total_hits": True}
        while not self.stop.is_set():
            try:
                answer = http(self.base, "POST", "/%s/_search" % INDEX, body, timeout=5)
                ok = answer["_shards"]["failed"] == 0 and answer["hits"]["total"]["value"] == DOCS
                self.results.append((time.monotonic(), ok, None if ok else json.dumps(answer["_shards"])[:200]))
            except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
                self.results.append((time.monotonic(), False, str(exc)[:200]))
            self.stop.wait(0.1)

    def figures(self):
        return {"searches": len(self.results), "failed_searches": sum(1 for r in self.results if not r[1]),
                "errors": sorted({r[2] for r in self.results if r[2]})[:5]}


def test_rolling_restart_behind_the_green_gate_fails_no_search(localenv, cluster, run_module):
    ns = cluster["ns"]
    params = {"name": NAME, "namespace": ns, "engine": "elasticsearch", "container": "elasticsearch",
              "template_annotations": {"example.com/restart": "1"}, "gate_timeout": 600, "pod_timeout": 600}
    before = pod_state(localenv, ns)
    settings_before = cluster_settings(localenv, ns)

    planned = run_module("rolling_update", params, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["changed"] is True and sorted(planned["plan"]["pods"]) == PODS
    master = planned["plan"]["primary"]
    assert master in PODS and planned["plan"]["pods"][-1] == master
    assert any("green" in gate for gate in planned["plan"]["gates"])
    assert pod_state(localenv, ns) == before and cluster_settings(localenv, ns) == settings_before

    searcher = Searcher(service_url(localenv, ns))
    searcher.thread.start()
    until("the searcher running", lambda: len(searcher.results) >= 10)
    result = run_module("rolling_update", params, timeout=2400)
    time.sleep(2)
    searcher.stop.set()
    searcher.thread.join(30)
    assert not result.get("failed"), result.get("msg")
    figures = searcher.figures()
    print("\nrolling restart of 3 Elasticsearch nodes: %s" % json.dumps(dict(figures, pods=result["pods"])))

    assert [p["pod"] for p in result["pods"]] == planned["plan"]["pods"]
    after = pod_state(localenv, ns)
    assert all(after[p][0] != before[p][0] and after[p][1] == result["update_revision"] for p in PODS)
    health = http(api(localenv, ns), "GET", "/_cluster/health")
    assert health["status"] == "green" and health["number_of_nodes"] == 3
    assert result["health"]["status"] == "green" and result["health"]["nodes"] == PODS
    # Allocation was given back: nothing left at primaries.
    assert "cluster.routing.allocation.enable" not in cluster_settings(localenv, ns)
    docs_everywhere(localenv, ns)
    assert figures["searches"] > 50
    assert figures["failed_searches"] == 0, figures

    again = run_module("rolling_update", params)
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is False and again["pods"] == []
    assert pod_state(localenv, ns) == after

    # A run stopped while a pod was away leaves allocation at primaries: the next run resets it.
    http(api(localenv, ns), "PUT", "/_cluster/settings",
         {"persistent": {"cluster.routing.allocation.enable": "primaries"}})
    resumed = run_module("rolling_update", params)
    assert not resumed.get("failed"), resumed.get("msg")
    assert resumed["changed"] is True and resumed["pods"] == [] and len(resumed["plan"]["resume"]) == 1
    assert "cluster.routing.allocation.enable" not in cluster_settings(localenv, ns)
    assert pod_state(localenv, ns) == after


def test_scale_down_refuses_what_is_unsafe_then_drains_a_node(localenv, cluster, run_module):
    ns = cluster["ns"]
    base = api(localenv, ns)
    http(base, "PUT", "/wide", {"settings": {"number_of_shards": 1, "number_of_replicas": 2}})
    until("wide green", lambda: http(base, "GET", "/_cluster/health/wide?wait_for_status=green&timeout=5s")
          ["status"] == "green")
    before = pod_state(localenv, ns)
    settings_before = cluster_settings(localenv, ns)
    params = {"name": NAME, "namespace": ns, "engine": "elasticsearch", "container": "elasticsearch",
              "replicas": 2, "wait_timeout": 600}

    refused = run_module("scale_down", params)
    assert refused.get("failed")
    assert refused["msg"].startswith("replicas: 2 would leave 2 data node(s): index wide has number_of_replicas 2")
    zero = run_module("scale_down", dict(params, replicas=0))
    assert zero.get("failed") and "no master-eligible" in zero["msg"]
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3 and pod_state(localenv, ns) == before
    assert cluster_settings(localenv, ns) == settings_before
    voting = http(base, "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    assert not voting["metadata"]["cluster_coordination"]["voting_config_exclusions"]

    http(base, "PUT", "/wide/_settings", {"index": {"number_of_replicas": 1}})
    planned = run_module("scale_down", params, check=True)
    assert not planned.get("failed"), planned.get("msg")
    assert planned["plan"]["remove"] == ["elasticsearch-2"]
    assert planned["plan"]["elasticsearch"]["exclude"] == ["elasticsearch-2"]
    assert planned["plan"]["elasticsearch"]["voting_exclusions"] == ["elasticsearch-2"]
    assert sts_json(localenv, ns)["spec"]["replicas"] == 3 and cluster_settings(localenv, ns) == settings_before

    start = time.monotonic()
    result = run_module("scale_down", params, timeout=1200)
    assert not result.get("failed"), result.get("msg")
    print("\nscale-down of Elasticsearch 3 -> 2: %.1f s" % (time.monotonic() - start))
    assert result["removed"] == ["elasticsearch-2"]
    assert sts_json(localenv, ns)["spec"]["replicas"] == 2
    until("elasticsearch-2 gone", lambda: "elasticsearch-2" not in running_pods(localenv, ns))
    health = http(base, "GET", "/_cluster/health?wait_for_status=green&timeout=30s")
    assert health["status"] == "green" and health["number_of_nodes"] == 2
    nodes = [n["name"] for n in http(base, "GET", "/_cat/nodes?format=json&h=name")]
    assert sorted(nodes) == ["elasticsearch-0", "elasticsearch-1"]
    assert "cluster.routing.allocation.exclude._name" not in cluster_settings(localenv, ns)
    voting = http(base, "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    assert not voting["metadata"]["cluster_coordination"]["voting_config_exclusions"]
    docs_everywhere(localenv, ns)

    again = run_module("scale_down", params)
    assert not again.get("failed") and again["changed"] is False

    # A run stopped after lowering replicas leaves its exclusions (another name in the list is kept):
    # the next run with the same target clears what is its own.
    http(base, "PUT", "/_cluster/settings",
         {"persistent": {"cluster.routing.allocation.exclude._name": "elsewhere,elasticsearch-2"}})
    http(base, "POST", "/_cluster/voting_config_exclusions?node_names=elasticsearch-2")
    finished = run_module("scale_down", params)
    assert not finished.get("failed"), finished.get("msg")
    assert finished["changed"] is True and finished["removed"] == []
    assert finished["plan"]["elasticsearch"]["clear_exclusions"] == ["elasticsearch-2"]
    assert cluster_settings(localenv, ns)["cluster.routing.allocation.exclude._name"] == "elsewhere"
    voting = http(base, "GET", "/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    assert not voting["metadata"]["cluster_coordination"]["voting_config_exclusions"]
    assert http(base, "GET", "/_cluster/health")["status"] == "green"
    docs_everywhere(localenv, ns)
