# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The retention of PostgreSQL base backups (``backup_retention``) on the real node and the S3 store.

One PostgreSQL pod archiving its WAL; three base backups with WAL switched between them, and an
interrupted backup older than all of them (its tar without a marker). Check mode lists what
``keep_last: 2`` would remove and removes nothing; the next backup removes the two oldest complete
backups, the interrupted one and the WAL before the oldest kept backup's start, and keeps the rest;
``max_age_days: 0`` never removes the newest complete backup. What the store holds is read with the
S3 API, not through the role.
"""

from __future__ import annotations

import re
import subprocess
import time

from test_backup_postgres import _backup_vars, _listed, _playbook, _postgres_vars, _secrets, _store  # pylint: disable=wrong-import-order
from testlib.realnode import psql, require_real_node, run_role


def _s3(store, method, key="", query="", data=None):
    """One signed request to the store (curl's SigV4; the keys go through its standard input)."""
    url = "%s/%s/%s%s" % (store["OBJECTSTORE_ENDPOINT"], store["OBJECTSTORE_BUCKET"], key, query)
    config = 'url = "%s"\nuser = "%s:%s"\n' % (url, store["OBJECTSTORE_ACCESS_KEY_ID"],
                                               store["OBJECTSTORE_SECRET_ACCESS_KEY"])
    argv = ["curl", "-sS", "-f", "-X", method, "--aws-sigv4", "aws:amz:us-east-1:s3", "-K", "-"]
    if data is not None:
        # The store checks the payload's hash, which curl does not sign: declare it unsigned.
        argv += ["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--data-binary", data]
    proc = subprocess.run(argv, input=config, capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def _keys(store, prefix):
    keys, token = [], ""
    while True:
        page = _s3(store, "GET", query="?list-type=2&prefix=%s/%s" % (prefix, token))
        keys += re.findall(r"<Key>([^<]+)</Key>", page)
        more = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", page)
        if not more:
            return keys
        token = "&continuation-token=" + more.group(1)


def _bases(keys, prefix):
    """``{id: set of file names}`` under base/."""
    found = {}
    for key in keys:
        match = re.match(re.escape(prefix) + r"/base/([^/]+)/(.+)$", key)
        if match:
            found.setdefault(match.group(1), set()).add(match.group(2))
    return found


def _wal(keys, prefix):
    return sorted(key.rsplit("/", 1)[1] for key in keys if key.startswith(prefix + "/wal/"))


def test_retention_keeps_the_newest_and_the_wal_they_need(localenv, namespace):
    require_real_node(localenv)
    store = _store(localenv)
    hidden = _secrets(localenv, namespace, store)
    prefix = "test/%s/postgres" % namespace
    spec = {"type": "s3", "endpoint": store["OBJECTSTORE_ENDPOINT"], "bucket": store["OBJECTSTORE_BUCKET"],
            "credentials_secret": "backup-store"}
    backup = _backup_vars(localenv, namespace, spec, prefix)
    run_role(localenv, "postgres", _postgres_vars(localenv, namespace, "postgres", spec, prefix))
    psql(localenv, namespace, "postgres-0", "CREATE TABLE items (id bigint PRIMARY KEY)")
    outputs = []

    # An interrupted backup from long ago: its tar, no marker.
    _s3(store, "PUT", "%s/base/20000101T000000Z/base.tar.gz" % prefix, data="not a whole tar")
    for n in range(3):
        time.sleep(1)  # a new backup id (ids are per second)
        psql(localenv, namespace, "postgres-0", "INSERT INTO items VALUES (%d)" % n)
        psql(localenv, namespace, "postgres-0", "SELECT pg_switch_wal()")
        outputs.append(_playbook(localenv, "backup.yml", backup))
    ids = sorted(entry.split()[1] for entry in _listed(_playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
                 if entry.startswith("base "))
    assert len(ids) == 3, ids
    before = _keys(store, prefix)
    assert set(_bases(before, prefix)) == set(ids) | {"20000101T000000Z"}

    # Check mode lists what keep_last 2 would remove, and removes nothing.
    outputs.append(_playbook(localenv, "backup.yml", dict(backup, backup_retention={"keep_last": 2}), check=True))
    assert "Would prune base backups %s, interrupted backups 20000101T000000Z" % ids[0] in outputs[-1], \
        outputs[-1][-3000:]
    assert sorted(_keys(store, prefix)) == sorted(before)

    # A fourth backup, then the retention: the two newest stay, with the WAL from the older one's start.
    time.sleep(1)
    outputs.append(_playbook(localenv, "backup.yml", dict(backup, backup_retention={"keep_last": 2})))
    after = _keys(store, prefix)
    bases = _bases(after, prefix)
    assert ids[0] not in bases and ids[1] not in bases and "20000101T000000Z" not in bases, sorted(bases)
    assert len(bases) == 2 and ids[2] in bases and all("backup.json" in files for files in bases.values()), bases
    wal_before, wal_after = _wal(before, prefix), _wal(after, prefix)
    segments = [w for w in wal_after if re.match(r"^[0-9A-F]{24}$", w)]
    start = re.search(r'"start_wal": "([0-9A-F]{24})"', _s3(store, "GET", "%s/base/%s/backup.json" % (prefix, ids[2])))
    assert start, "the base backup records the WAL segment it starts from"
    assert segments and min(segments)[8:] >= start.group(1)[8:], (segments[:3], start.group(1))
    assert len([w for w in wal_before if re.match(r"^[0-9A-F]{24}$", w) and w[8:] < start.group(1)[8:]]) > 0

    # max_age_days 0 would remove every backup; the newest complete one is kept.
    time.sleep(1)
    outputs.append(_playbook(localenv, "backup.yml", dict(backup, backup_retention={"max_age_days": 0})))
    assert len(_bases(_keys(store, prefix), prefix)) == 1
    assert len([e for e in _listed(_playbook(localenv, "backup.yml", dict(backup, backup_kind="list")))
                if e.startswith("base ")]) == 1

    for output in outputs:
        for value in hidden:
            assert value not in output
