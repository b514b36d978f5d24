"""What the backup role's integration tests share: the local object store, the playbooks, the listing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from . import REPO, collections_root


def object_store(localenv):
    """The object store of the local environment (env.sh, or the environment of the run)."""
    keys = ("OBJECTSTORE_ENDPOINT", "OBJECTSTORE_BUCKET", "OBJECTSTORE_ACCESS_KEY_ID", "OBJECTSTORE_SECRET_ACCESS_KEY")
    values = {key: localenv.get(key) or os.environ.get(key) for key in keys}
    if not all(values.values()):
        pytest.fail("the local environment has no object store (OBJECTSTORE_* in env.sh): run `make localenv-up`")
    return values


class _Playbook(subprocess.Popen):  # pylint: disable=consider-using-with
    """An ansible-playbook run whose extra-vars file (the store's keys among them) goes when the run has ended."""

    def __init__(self, argv, vars_dir, **kwargs):
        self._vars_dir = vars_dir
        super().__init__(argv, **kwargs)

    def wait(self, timeout=None):
        try:
            return super().wait(timeout)
        finally:
            if self.returncode is not None:
                shutil.rmtree(self._vars_dir, ignore_errors=True)


def start_playbook(localenv, name, variables, check=False):
    """ansible-playbook playbooks/<name> with the variables as extra vars, running; its output on stdout."""
    tmp = tempfile.mkdtemp(prefix="backup-vars-")
    extra = os.path.join(tmp, "vars.json")
    with open(extra, "w", encoding="utf-8") as handle:
        json.dump(dict(variables, ansible_python_interpreter=sys.executable), handle)
    env = dict(os.environ)
    env.update(localenv)
    env.update({"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_NOCOLOR": "1"})
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-v",
            "-e", "@" + extra, os.path.join(REPO, "playbooks", name)] + (["--check"] if check else [])
    return _Playbook(argv, tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)


def playbook(localenv, name, variables, check=False, expect_ok=True):
    """Run playbooks/<name> to its end; returns its whole output (fails the test on failure when expect_ok)."""
    proc = start_playbook(localenv, name, variables, check)
    output = proc.communicate(timeout=2400)[0]
    if expect_ok and proc.returncode != 0:
        raise AssertionError("playbook %s failed:\n%s" % (name, output[-6000:]))
    return output


def listed(output):
    """The complete backups the list playbook reported (its last debug message)."""
    marker = '"msg": ['
    start = output.rindex(marker) + len(marker) - 1
    return json.loads(output[start:output.index("]", start) + 1])
