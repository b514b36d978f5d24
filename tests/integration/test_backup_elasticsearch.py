# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Elasticsearch snapshots on the real node, restored into a fresh cluster and counted.

A one-node cluster from the elasticsearch role with a snapshot volume; three indices of known
documents. The backup role (``backup_engine: elasticsearch``):

- a lifecycle policy on a cluster without snapshot lifecycle management is refused before anything
  is written; where the cluster has it, the policy is read back with ``GET _slm/policy``;
- the repository entry point in check mode registers nothing, then registers the repository (read
  back through the API), and a second run reports no change;
- ``playbooks/backup.yml`` takes a snapshot (``SUCCESS``) and ships the repository to the S3 store;
- the StatefulSet, its data claim AND the snapshot volume are deleted; a new cluster with an empty
  snapshot volume gets the repository back from the store, two of the three indices are restored and
  every document is counted; the third is not there; an open index is not overwritten unless asked;
  a rename restores beside it.
- The store's keys never appear in the output.

Slow (two cluster starts and nine playbooks: about three minutes here): ``make reliability`` and
``make integration-slow`` run it, ``make test`` does not. The snapshot's, the copy's and the restore's
durations are printed (``-s``) for roles/backup/README.md; ``BACKUP_TEST_DOCS`` sets the size.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error

import pytest
from test_backup_postgres import _apply, _job_seconds  # pylint: disable=wrong-import-order
from test_day2_elasticsearch import http  # pylint: disable=wrong-import-order
from testlib.backup import object_store, playbook
from testlib.realnode import IMAGES, kubectl, placement, require_real_node, run_role, until

pytestmark = pytest.mark.slow

DOCS = {"orders": int(os.environ.get("BACKUP_TEST_DOCS", "3000")), "customers": 500, "scratch": 200}
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "384Mi"}}


def status_of(base, path):
    try:
        http(base, "GET", path)
        return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def _es_vars(localenv, namespace):
    probe = {"exec": {"command": ["bash", "/etc/elasticsearch-role/elasticsearch.sh", "ready"]}, "periodSeconds": 3,
             "timeoutSeconds": 5, "failureThreshold": 3}
    return dict(placement("elasticsearch"), elasticsearch_namespace=namespace, elasticsearch_image=IMAGES["elasticsearch"],
                elasticsearch_replicas=1, elasticsearch_initial_master_count=1, elasticsearch_heap_size="256m",
                elasticsearch_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"),
                elasticsearch_storage_size="512Mi",
                elasticsearch_resources={"requests": {"cpu": "100m", "memory": "640Mi"},
                                         "limits": {"cpu": "1", "memory": "640Mi"}},
                elasticsearch_readiness_probe=probe, elasticsearch_prestop_sleep_seconds=1,
                elasticsearch_termination_grace_period_seconds=30, elasticsearch_wait_timeout=600,
                elasticsearch_extra_env={"LD_PRELOAD": "/usr/local/lib/libnofile-shim.so"},
                elasticsearch_snapshot_volume={"claim": "elasticsearch-snapshots", "size": "512Mi",
                                               "storage_class": localenv.get("LOCALENV_REAL_STORAGE_CLASS"),
                                               "access_mode": "ReadWriteOnce"})


def _backup_vars(namespace, spec, prefix):
    # The Jobs run as Elasticsearch's user (1000, the volume's group) with an image that has rclone.
    return dict(placement("backup"), backup_engine="elasticsearch", backup_namespace=namespace,
                backup_name="elasticsearch", backup_store=spec, backup_prefix=prefix, backup_image=IMAGES["postgres"],
                backup_resources=SMALL, backup_run_as_user=1000, backup_fs_group=1000, backup_wait_timeout=600)


def _cluster(localenv, namespace):
    run_role(localenv, "elasticsearch", _es_vars(localenv, namespace))
    ip = kubectl(localenv, "get", "pod", "elasticsearch-0", "-n", namespace, "-o", "jsonpath={.status.podIP}").stdout
    base = "http://%s:9200" % ip
    until("the cluster answering", lambda: http(base, "GET", "/_cluster/health?timeout=5s")["status"]
          in ("green", "yellow"), timeout=300, retry_on=(AssertionError, OSError))
    return base


def _load(base):
    for index, count in DOCS.items():
        http(base, "PUT", "/" + index, {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
        for start in range(0, count, 1000):
            lines = []
            for doc in range(start, min(count, start + 1000)):
                lines.append(json.dumps({"index": {"_index": index, "_id": str(doc)}}))
                lines.append(json.dumps({"n": doc, "text": "%s document %d" % (index, doc)}))
            assert http(base, "POST", "/_bulk", "\n".join(lines) + "\n", timeout=120)["errors"] is False
    http(base, "POST", "/_refresh")
    return {index: http(base, "GET", "/%s/_count" % index)["count"] for index in DOCS}


def _last_result(output):
    """The dict the backup or restore playbook reported last (its final debug message)."""
    marker = '"msg": {'
    start = output.rindex(marker) + len(marker) - 1
    return json.JSONDecoder().raw_decode(output[start:])[0]


def test_snapshot_ship_and_restore_chosen_indices(localenv, namespace):
    require_real_node(localenv)
    store = object_store(localenv)
    _apply(localenv, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backup-store", "namespace": namespace},
                      "stringData": {"access_key_id": store["OBJECTSTORE_ACCESS_KEY_ID"],
                                     "secret_access_key": store["OBJECTSTORE_SECRET_ACCESS_KEY"]}})
    hidden = [store["OBJECTSTORE_SECRET_ACCESS_KEY"]]
    spec = {"type": "s3", "endpoint": store["OBJECTSTORE_ENDPOINT"], "bucket": store["OBJECTSTORE_BUCKET"],
            "credentials_secret": "backup-store"}
    backup = _backup_vars(namespace, spec, "test/%s/elasticsearch" % namespace)
    outputs = []

    base = _cluster(localenv, namespace)
    counts = _load(base)
    assert counts == DOCS
    # The repository's directory is on the shared volume, under path.repo.
    settings = http(base, "GET", "/_nodes/_local/settings?filter_path=nodes.*.settings.path.repo")
    assert ["/usr/share/elasticsearch/snapshots"] in [n["settings"]["path"]["repo"] for n in settings["nodes"].values()]

    # A lifecycle policy needs the cluster's snapshot lifecycle management: where it has none, refused
    # before anything is written; where it has it, set and read back.
    policy = dict(backup, backup_kind="repository", backup_elasticsearch_slm_schedule="0 30 1 * * ?",
                  backup_elasticsearch_slm_retention={"expire_after": "30d", "min_count": 2, "max_count": 20})
    has_slm = status_of(base, "/_slm/policy") == 200
    if has_slm:
        outputs.append(playbook(localenv, "backup.yml", policy))
        found = http(base, "GET", "/_slm/policy/elasticsearch-backup")["elasticsearch-backup"]["policy"]
        assert found["schedule"] == "0 30 1 * * ?" and found["repository"] == "datastore-backup"
        assert found["retention"] == {"expire_after": "30d", "min_count": 2, "max_count": 20}
        http(base, "DELETE", "/_snapshot/datastore-backup")
    else:
        outputs.append(playbook(localenv, "backup.yml", policy, expect_ok=False))
        assert "policy: the cluster has no snapshot lifecycle management" in outputs[-1], outputs[-1][-3000:]
        assert status_of(base, "/_snapshot/datastore-backup") == 404

    # The repository alone: check mode writes nothing; then registered; then no change.
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="repository"), check=True))
    assert "changed=1" in outputs[-1]
    assert status_of(base, "/_snapshot/datastore-backup") == 404
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="repository")))
    repo = http(base, "GET", "/_snapshot/datastore-backup")["datastore-backup"]
    assert repo["type"] == "fs" and repo["settings"]["location"] == "test/%s/elasticsearch" % namespace
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="repository")))
    assert "changed=0" in outputs[-1], outputs[-1][-2000:]

    # A snapshot now, shipped to the store.
    size = sum(int(row["store.size"]) for row in http(base, "GET", "/_cat/indices?format=json&bytes=b&h=index,store.size"))
    outputs.append(playbook(localenv, "backup.yml", backup))
    taken = _last_result(outputs[-1])
    ship_seconds = _job_seconds(localenv, namespace, "elasticsearch-backup-ship")
    assert taken["state"] == "SUCCESS" and set(DOCS) <= set(taken["indices"]), taken
    assert taken["shipped"]["kind"] == "ship" and taken["shipped"]["files"] > 0, taken
    snapshots = http(base, "GET", "/_snapshot/datastore-backup/_all")["snapshots"]
    assert [s["snapshot"] for s in snapshots] == [taken["snapshot"]] and snapshots[0]["state"] == "SUCCESS"
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
    assert taken["snapshot"] + " SUCCESS" in outputs[-1]

    # Everything on the cluster goes: the StatefulSet, its data and the snapshot volume.
    run_role(localenv, "elasticsearch", dict(_es_vars(localenv, namespace), elasticsearch_delete_pvcs=True),
             state="absent")
    # The finished ship Job's pod still names the snapshot claim, which keeps the claim until the pod goes.
    kubectl(localenv, "delete", "jobs", "--all", "-n", namespace, "--cascade=foreground", "--wait=true")
    kubectl(localenv, "delete", "pvc", "elasticsearch-snapshots", "-n", namespace, "--wait=true")
    until("the claims gone", lambda: kubectl(localenv, "get", "pvc", "-n", namespace, "-o", "name").stdout.strip() == "")

    # A fresh cluster, an empty snapshot volume: the repository comes back from the store.
    base = _cluster(localenv, namespace)
    assert status_of(base, "/orders") == 404
    restore = dict(backup, backup_restore_indices=["orders", "customers"])
    outputs.append(playbook(localenv, "restore.yml", restore, check=True))
    assert "Would restore orders, customers of the newest successful snapshot" in outputs[-1]
    assert status_of(base, "/orders") == 404
    started = time.monotonic()
    outputs.append(playbook(localenv, "restore.yml", restore))
    restore_seconds = time.monotonic() - started
    fetch_seconds = _job_seconds(localenv, namespace, "elasticsearch-backup-fetch")
    assert _last_result(outputs[-1])["snapshot"] == taken["snapshot"]
    until("the restored indices searchable", lambda: http(
        base, "GET", "/_cluster/health/orders,customers?wait_for_status=yellow&timeout=5s")["status"] in ("green", "yellow"))
    assert http(base, "GET", "/orders/_count")["count"] == DOCS["orders"]
    assert http(base, "GET", "/customers/_count")["count"] == DOCS["customers"]
    assert http(base, "GET", "/orders/_doc/%d" % (DOCS["orders"] - 1))["_source"]["text"] == \
        "orders document %d" % (DOCS["orders"] - 1)
    assert status_of(base, "/scratch") == 404

    # An open index is not overwritten unless asked; a rename restores beside it.
    http(base, "POST", "/orders/_doc?refresh=true", {"n": -1, "text": "written after the restore"})
    outputs.append(playbook(localenv, "restore.yml", dict(backup, backup_restore_indices=["orders"]), expect_ok=False))
    assert "replace_open: the open indices orders would be overwritten" in outputs[-1], outputs[-1][-3000:]
    assert http(base, "GET", "/orders/_count")["count"] == DOCS["orders"] + 1
    outputs.append(playbook(localenv, "restore.yml", dict(
        backup, backup_restore_indices=["orders"], backup_restore_rename_pattern="(.+)",
        backup_restore_rename_replacement="restored-$1")))
    until("the renamed index searchable", lambda: http(
        base, "GET", "/_cluster/health/restored-orders?wait_for_status=yellow&timeout=5s")["status"] in ("green", "yellow"))
    assert http(base, "GET", "/restored-orders/_count")["count"] == DOCS["orders"]
    outputs.append(playbook(localenv, "restore.yml", dict(backup, backup_restore_indices=["orders"],
                                                          backup_restore_replace_open=True)))
    until("the replaced index searchable", lambda: http(
        base, "GET", "/_cluster/health/orders?wait_for_status=yellow&timeout=5s")["status"] in ("green", "yellow"))
    assert http(base, "GET", "/orders/_count")["count"] == DOCS["orders"]

    for output in outputs:
        for value in hidden:
            assert value not in output
    print("\nsnapshot of %d documents in 3 indices (%.1f MB on disk): %.1f s in Elasticsearch, copy to the store (Job) "
          "%d s; restore of 2 indices (%d documents) into a fresh cluster: fetch Job %d s, the whole restore playbook "
          "%.0f s" % (sum(DOCS.values()), size / 1e6, (taken.get("duration_in_millis") or 0) / 1000.0, ship_seconds,
                      DOCS["orders"] + DOCS["customers"], fetch_seconds, restore_seconds))


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])
