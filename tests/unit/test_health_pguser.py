# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health command logs in as PGUSER (which the postgres role sets) before POSTGRES_USER."""

from __future__ import annotations

import os
import subprocess

import pytest
from ansible_collections.datastore.kubernetes.plugins.module_utils import _health


@pytest.mark.parametrize("env, user", [
    ({"PGUSER": "app_admin", "POSTGRES_USER": "other"}, "app_admin"),
    ({"POSTGRES_USER": "other"}, "other"),
    ({}, "postgres"),
])
def test_postgres_command_user(tmp_path, env, user):
    fake = tmp_path / "psql"
    fake.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -U ] && echo "$2"; shift; done\n')
    fake.chmod(0o755)
    base = {"PATH": "%s:%s" % (tmp_path, os.environ.get("PATH", "/usr/bin:/bin"))}
    out = subprocess.run(_health.POSTGRES_COMMAND, env=dict(base, **env), capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == user
