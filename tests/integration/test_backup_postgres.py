# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of PostgreSQL on the real node, restored and queried.

- S3 (the local environment's SeaweedFS): known rows, WAL archiving, a base backup through
  ``playbooks/backup.yml``; a second backup killed in the middle is neither listed nor restored;
  row A, the moment noted, row B; the StatefulSet and its volumes deleted; ``playbooks/restore.yml``
  to that moment into a NEW StatefulSet: every known row and A are there, B is not.
- A volume: a base backup to a claim and a restore of it (no WAL replayed past the backup's own).
- The store's keys and the database passwords never appear in the playbooks' output.

The backup and restore Jobs' durations are printed (``-s``) for roles/backup/README.md; nothing
here asserts on time.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid

import pytest
from testlib.backup import listed, object_store, playbook
from testlib.realnode import IMAGES, kubectl, placement, psql, require_real_node, run_role, until

ROWS = int(os.environ.get("BACKUP_TEST_ROWS", "100000"))
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "384Mi"}}


def _apply(localenv, manifest):
    kubectl(localenv, "apply", "-f", "-", stdin=json.dumps(manifest))


def _secrets(localenv, namespace, store=None):
    """The superuser's login and the store's keys as Secrets; returns the values that must stay hidden."""
    password = uuid.uuid4().hex
    _apply(localenv, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-superuser", "namespace": namespace},
                      "stringData": {"username": "postgres", "password": password}})
    if store is None:
        return [password]
    _apply(localenv, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backup-store", "namespace": namespace},
                      "stringData": {"access_key_id": store["OBJECTSTORE_ACCESS_KEY_ID"],
                                     "secret_access_key": store["OBJECTSTORE_SECRET_ACCESS_KEY"]}})
    return [password, store["OBJECTSTORE_SECRET_ACCESS_KEY"]]


def _postgres_vars(localenv, namespace, name, store_spec, prefix, archive=True):
    return dict(placement("postgres"), postgres_namespace=namespace, postgres_name=name, postgres_image=IMAGES["postgres"],
                postgres_replicas=1, postgres_credentials_secret="pg-superuser",
                postgres_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"), postgres_storage_size="512Mi",
                postgres_resources=SMALL, postgres_parameters={"shared_buffers": "32MB"}, postgres_wait_timeout=600,
                postgres_wal_archive=archive, postgres_wal_archive_store=store_spec, postgres_wal_archive_prefix=prefix)


def _backup_vars(localenv, namespace, store_spec, prefix):
    return dict(placement("backup"), backup_namespace=namespace, backup_name="postgres", backup_store=store_spec,
                backup_prefix=prefix, backup_image=IMAGES["postgres"], backup_resources=SMALL,
                backup_postgres_credentials_secret="pg-superuser",
                backup_restore_storage_class=localenv.get("LOCALENV_REAL_STORAGE_CLASS"),
                backup_restore_storage_size="512Mi", backup_wait_timeout=900)


def _job_seconds(localenv, namespace, job):
    status = json.loads(kubectl(localenv, "get", "job", job, "-n", namespace, "-o", "json").stdout)["status"]
    start = time.mktime(time.strptime(status["startTime"], "%Y-%m-%dT%H:%M:%SZ"))
    end = time.mktime(time.strptime(status["completionTime"], "%Y-%m-%dT%H:%M:%SZ"))
    return int(end - start)


def _load_known_rows(localenv, namespace, pod="postgres-0"):
    psql(localenv, namespace, pod, "CREATE TABLE items (id bigint PRIMARY KEY, note text NOT NULL)")
    psql(localenv, namespace, pod, "INSERT INTO items SELECT g, 'known ' || md5(g::text) FROM generate_series(1, %d) g" % ROWS)
    return psql(localenv, namespace, pod, "SELECT pg_size_pretty(pg_database_size('app'))")


def _destroy(localenv, namespace, name):
    run_role(localenv, "postgres", {"postgres_namespace": namespace, "postgres_name": name, "postgres_delete_pvcs": True},
             state="absent")
    claims = kubectl(localenv, "get", "pvc", "-n", namespace, "-o", "name").stdout.split()
    assert "persistentvolumeclaim/data-%s-0" % name not in claims


def test_point_in_time_restore_from_s3(localenv, namespace):
    require_real_node(localenv)
    store = object_store(localenv)
    hidden = _secrets(localenv, namespace, store)
    prefix = "test/%s/postgres" % namespace
    spec = {"type": "s3", "endpoint": store["OBJECTSTORE_ENDPOINT"], "bucket": store["OBJECTSTORE_BUCKET"],
            "credentials_secret": "backup-store"}
    backup = _backup_vars(localenv, namespace, spec, prefix)
    outputs = []

    run_role(localenv, "postgres", _postgres_vars(localenv, namespace, "postgres", spec, prefix))
    size = _load_known_rows(localenv, namespace)
    hidden.append(base64.b64decode(kubectl(localenv, "get", "secret", "postgres-replication", "-n", namespace,
                                           "-o", "jsonpath={.data.password}").stdout).decode())

    # Check mode says what it would do and runs no Job.
    outputs.append(playbook(localenv, "backup.yml", backup, check=True))
    assert "Would take a postgres base backup of %s/postgres" % namespace in outputs[-1]
    assert kubectl(localenv, "get", "jobs", "-n", namespace, "-o", "name").stdout.strip() == ""

    outputs.append(playbook(localenv, "backup.yml", backup))
    backup_seconds = _job_seconds(localenv, namespace, "postgres-backup")
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
    complete = [entry for entry in listed(outputs[-1]) if entry.startswith("base ")]
    assert len(complete) == 1, complete
    first_id = complete[0].split()[1]

    # A second backup, slowed down and killed in the middle: never marked complete.
    time.sleep(1)  # a new backup id (ids are per second)
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_wait=False, backup_backoff_limit=0,
                                                         backup_postgres_max_rate="32k")))

    def started_pod():
        pods = json.loads(kubectl(localenv, "get", "pods", "-n", namespace, "-l", "job-name=postgres-backup",
                                  "-o", "json").stdout)["items"]
        for pod in pods:
            log = kubectl(localenv, "logs", "-n", namespace, pod["metadata"]["name"], check=False).stdout
            if "base backup 2" in log:
                return pod["metadata"]["name"], log
        return None

    pod, log = until("the slowed backup to start streaming", started_pod, timeout=300)
    interrupted_id = log.split("base backup ", 1)[1].split()[0]
    assert interrupted_id != first_id
    time.sleep(3)  # some of it streamed: the kill lands in the middle
    kubectl(localenv, "delete", "pod", pod, "-n", namespace, "--grace-period=0", "--force")
    until("the interrupted backup Job to fail", lambda: kubectl(
        localenv, "get", "job", "postgres-backup", "-n", namespace, "-o",
        "jsonpath={.status.conditions[?(@.type=='Failed')].status}").stdout == "True")
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
    shown = listed(outputs[-1])
    assert [entry.split()[1] for entry in shown if entry.startswith("base ")] == [first_id], shown

    # Row A, the moment, row B; B's WAL is archived before the datastore is destroyed.
    time.sleep(1)
    psql(localenv, namespace, "postgres-0", "INSERT INTO items VALUES (-1, 'row A')")
    time.sleep(1)
    target = psql(localenv, namespace, "postgres-0", "SELECT clock_timestamp()")
    time.sleep(1)
    psql(localenv, namespace, "postgres-0", "INSERT INTO items VALUES (-2, 'row B')")
    segment = psql(localenv, namespace, "postgres-0", "SELECT pg_walfile_name(pg_switch_wal())")
    until("the segment with row B archived", lambda: psql(
        localenv, namespace, "postgres-0",
        "SELECT coalesce(last_archived_wal, '') >= '%s' FROM pg_stat_archiver" % segment) == "t")

    _destroy(localenv, namespace, "postgres")

    restore = dict(_postgres_vars(localenv, namespace, "postgres", spec, prefix, archive=False), **backup)
    restore.update(backup_restore_name="restored", backup_restore_target_time=target)
    del restore["postgres_name"], restore["postgres_namespace"]
    outputs.append(playbook(localenv, "restore.yml", restore, check=True))
    assert "Would restore the newest complete base backup that ended before %s" % target in outputs[-1]
    assert kubectl(localenv, "get", "pvc", "data-restored-0", "-n", namespace, check=False).returncode != 0
    outputs.append(playbook(localenv, "restore.yml", restore))
    restore_seconds = _job_seconds(localenv, namespace, "restored-restore")

    rows = psql(localenv, namespace, "restored-0", "SELECT note FROM items WHERE id < 0 ORDER BY id DESC", container="restored")
    assert rows == "row A"
    assert psql(localenv, namespace, "restored-0", "SELECT count(*) FROM items WHERE note LIKE 'known %'", container="restored") == str(ROWS)
    assert psql(localenv, namespace, "restored-0", "SELECT pg_is_in_recovery()", container="restored") == "f"
    psql(localenv, namespace, "restored-0", "INSERT INTO items VALUES (-3, 'after the restore')", container="restored")

    for output in outputs:
        for value in hidden:
            assert value not in output
    print("\nbackup of %d rows (database %s) to S3: %d s; restore to a point in time: %d s"
          % (ROWS, size, backup_seconds, restore_seconds))


# The second target: slow (a base backup, a dump, a CronJob and a restore); `make reliability` runs it.
@pytest.mark.slow
def test_backup_to_a_volume_and_restore(localenv, namespace):
    require_real_node(localenv)
    hidden = _secrets(localenv, namespace)
    _apply(localenv, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                      "metadata": {"name": "backups", "namespace": namespace},
                      "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                               "storageClassName": localenv.get("LOCALENV_REAL_STORAGE_CLASS")}})
    spec = {"type": "volume", "claim": "backups"}
    backup = _backup_vars(localenv, namespace, spec, "")
    run_role(localenv, "postgres", _postgres_vars(localenv, namespace, "postgres", spec, ""))
    size = _load_known_rows(localenv, namespace)
    outputs = [playbook(localenv, "backup.yml", dict(backup, backup_schedule="17 3 * * *"))]
    backup_seconds = _job_seconds(localenv, namespace, "postgres-backup")
    # The schedule is a CronJob running the same Job, one at a time; without a schedule it goes.
    cron = json.loads(kubectl(localenv, "get", "cronjob", "postgres-backup", "-n", namespace, "-o", "json").stdout)
    assert cron["spec"]["schedule"] == "17 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "base-backup"
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="dump", backup_dump_database="app")))
    _destroy(localenv, namespace, "postgres")

    restore = dict(_postgres_vars(localenv, namespace, "postgres", spec, "", archive=False), **backup)
    restore["backup_restore_name"] = "restored"
    del restore["postgres_name"], restore["postgres_namespace"]
    outputs.append(playbook(localenv, "restore.yml", restore))
    restore_seconds = _job_seconds(localenv, namespace, "restored-restore")
    assert psql(localenv, namespace, "restored-0", "SELECT count(*) FROM items", container="restored") == str(ROWS)
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
    kinds = sorted(entry.split()[0] for entry in listed(outputs[-1]))
    assert kinds == ["base", "dump"], kinds
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_wait=False)))
    assert kubectl(localenv, "get", "cronjob", "postgres-backup", "-n", namespace, check=False).returncode != 0
    for output in outputs:
        for value in hidden:
            assert value not in output
    print("\nbackup of %d rows (database %s) to a volume: %d s; restore: %d s" % (ROWS, size, backup_seconds, restore_seconds))


def test_object_store_answers_only_with_its_keys(localenv):
    store = object_store(localenv)
    url = "%s/%s?list-type=2" % (store["OBJECTSTORE_ENDPOINT"], store["OBJECTSTORE_BUCKET"])

    def status(user):
        argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-K", "-"]
        config = 'url = "%s"\n' % url
        if user:
            argv += ["--aws-sigv4", "aws:amz:us-east-1:s3"]
            config += 'user = "%s"\n' % user
        env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
        return subprocess.run(argv, input=config, capture_output=True, text=True, timeout=60, check=True, env=env).stdout

    assert status("%s:%s" % (store["OBJECTSTORE_ACCESS_KEY_ID"], store["OBJECTSTORE_SECRET_ACCESS_KEY"])) == "200"
    assert status("%s:%s" % (store["OBJECTSTORE_ACCESS_KEY_ID"], "not-the-key")) == "403"
    assert status(None) == "403"
