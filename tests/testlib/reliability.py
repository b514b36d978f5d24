"""Helpers of the reliability suite: the figures file, the secret search, playbook runs."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import sys
import tempfile
import time

from testlib import REPO, TESTS, collections_root

# What the suite's playbook runs print: every task result in full, as JSON (callback_plugins/).
JSON_CALLBACK = {"ANSIBLE_STDOUT_CALLBACK": "reliability_json"}
# `make reliability` records its figures in the tracked results file; `make test` points
# RELIABILITY_RESULTS elsewhere so that a test run leaves the work tree as it found it.
RESULTS = os.environ.get("RELIABILITY_RESULTS") or os.path.join(REPO, "benchmarks", "results", "reliability.json")


# -- the figures -------------------------------------------------------------------------
def record(section, figures):
    """Merge ``figures`` into ``section`` of the figures file (``RESULTS``; safe across processes)."""
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(os.path.join(tempfile.gettempdir(), "datastore-kubernetes-reliability.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(RESULTS) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            data = {}
        entry = data.setdefault(section, {})
        for key, value in figures.items():
            # Mappings (per-case outcomes) accumulate across runs that each cover some of the cases.
            if isinstance(value, dict) and isinstance(entry.get(key), dict):
                entry[key].update(value)
            else:
                entry[key] = value
        if "cases" in entry:
            entry["survived"] = sum(1 for ok in entry["cases"].values() if ok)
            entry["total"] = len(entry["cases"])
        entry["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data["python"] = "%d.%d" % sys.version_info[:2]
        tmp = RESULTS + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, RESULTS)


# -- secret search -----------------------------------------------------------------------
def encodings(secret):
    """The forms a secret value can take in output: plain, base64 (with and without padding)."""
    raw = secret.encode()
    forms = {secret, base64.b64encode(raw).decode()}
    # Inside a longer encoded text the value starts at one of three byte alignments; the
    # characters that depend on its neighbours (the first and last group) are left out.
    for shift in (0, 1, 2):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        forms.add(encoded[4 if shift else 0:len(encoded) - 4])
    return {form for form in forms if len(form) >= 8}


def find_secrets(secrets, sources):
    """``[(source, label)]`` for every secret (``{label: value}``) found in any source (``{name: text}``)."""
    found = []
    for label, value in sorted(secrets.items()):
        forms = encodings(value)
        for source, text in sources.items():
            if any(form in text for form in forms):
                found.append((source, label))
    return found


# -- playbooks ---------------------------------------------------------------------------
def ansible_playbook(localenv, args, extra_env=None, timeout=900):
    """Run ansible-playbook from this interpreter's environment against the given local environment."""
    import subprocess

    env = dict(os.environ)
    env.update(localenv)
    env.update({"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_HOST_KEY_CHECKING": "false", "ANSIBLE_RETRY_FILES_ENABLED": "false",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_PLUGINS": os.path.join(TESTS, "reliability", "callback_plugins")})
    env.update(extra_env or {})
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run([binary] + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=REPO)
