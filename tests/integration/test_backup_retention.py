# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The retention of PostgreSQL base backups (``backup_retention``) on the real node and the S3 store.

One PostgreSQL pod archiving its WAL; two base backups with WAL switched between them, and an
interrupted backup older than both (its tar without a marker). Check mode lists what ``keep_last: 1``
would remove and removes nothing. The next backup with ``keep_last: 1, max_age_days: 0`` (every backup
too old) removes the two older complete backups, the interrupted one and the WAL before the kept
backup's start, and keeps the newest complete backup. What the store holds is read with the S3 API,
not through the role.
"""

from __future__ import annotations

import re
import subprocess
import time
from urllib.parse import quote

from test_backup_postgres import _backup_vars, _postgres_vars, _secrets  # pylint: disable=wrong-import-order
from testlib.backup import object_store, playbook
from testlib.realnode import psql, require_real_node, run_role, until


def _s3(store, method, key="", query="", data=None):
    """One signed request to the store (curl's SigV4; the keys go through its standard input)."""
    url = "%s/%s%s%s" % (store["OBJECTSTORE_ENDPOINT"], store["OBJECTSTORE_BUCKET"], "/" + key if key else "", query)
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
        # Signed queries carry their values URI-encoded ('/' too).
        page = _s3(store, "GET", query="?list-type=2&prefix=%s%s" % (quote(prefix + "/", safe=""), token))
        keys += re.findall(r"<Key>([^<]+)</Key>", page)
        more = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", page)
        if not more:
            return keys
        token = "&continuation-token=" + quote(more.group(1), safe="")


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
    store = object_store(localenv)
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
    for n in range(2):
        time.sleep(1)  # a new backup id (ids are per second)
        psql(localenv, namespace, "postgres-0", "INSERT INTO items VALUES (%d)" % n)
        psql(localenv, namespace, "postgres-0", "SELECT pg_switch_wal()")
        outputs.append(playbook(localenv, "backup.yml", backup))
    before = _keys(store, prefix)
    ids = sorted(i for i, files in _bases(before, prefix).items() if "backup.json" in files)
    assert len(ids) == 2 and set(_bases(before, prefix)) == set(ids) | {"20000101T000000Z"}, sorted(before)

    # Check mode lists what keep_last 1 would remove, and removes nothing.
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_retention={"keep_last": 1}), check=True))
    assert "Would prune base backups %s, interrupted backups 20000101T000000Z" % ids[0] in outputs[-1], \
        outputs[-1][-3000:]
    assert sorted(_keys(store, prefix)) == sorted(before)

    # A third backup, then the retention: every backup is too old, the newest complete one stays,
    # with the WAL from its start on.
    time.sleep(1)
    outputs.append(playbook(localenv, "backup.yml", dict(backup, backup_retention={"keep_last": 1, "max_age_days": 0})))
    after = _keys(store, prefix)
    bases = _bases(after, prefix)
    assert len(bases) == 1 and not set(bases) & (set(ids) | {"20000101T000000Z"}), sorted(bases)
    kept = next(iter(bases))
    assert bases[kept] == {"base.tar.gz", "backup.json"}
    assert "Pruned base backups %s, %s, interrupted backups 20000101T000000Z" % (ids[1], ids[0]) in outputs[-1]
    start = re.search(r'"start_wal": "([0-9A-F]{24})"', _s3(store, "GET", "%s/base/%s/backup.json" % (prefix, kept)))
    assert start, "the base backup records the WAL segment it starts from"
    # What the prune could see: every segment before the kept backup's start that was in the store before
    # it ran is gone. (A segment archived after the prune, such as the one the backup's start closed, is
    # the next prune's: archiving runs behind the server.)
    older = [w for w in _wal(before, prefix) if re.match(r"^[0-9A-F]{24}$", w) and w[8:] < start.group(1)[8:]]
    assert older, "the store held WAL from before the kept backup"
    assert not set(older) & set(_wal(after, prefix)), (sorted(older), _wal(after, prefix)[:5])
    # And the kept backup's own WAL stays: its first segment arrives once the server has moved past it.
    psql(localenv, namespace, "postgres-0", "INSERT INTO items VALUES (100)")
    psql(localenv, namespace, "postgres-0", "SELECT pg_switch_wal()")
    until("the kept backup's first WAL segment in the store",
          lambda: start.group(1) in _wal(_keys(store, prefix), prefix), timeout=120)

    for output in outputs:
        for value in hidden:
            assert value not in output
