"""Helpers of the reliability suite: in-process module runs, the figures file, secret search."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import importlib
import io
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# What the suite's playbook runs print: every task result in full, as JSON (callback_plugins/).
JSON_CALLBACK = {"ANSIBLE_STDOUT_CALLBACK": "reliability_json"}
# `make reliability` records its figures in the tracked results file; `make test` points
# RELIABILITY_RESULTS elsewhere so that a test run leaves the work tree as it found it.
RESULTS = os.environ.get("RELIABILITY_RESULTS") or os.path.join(REPO, "benchmarks", "results", "reliability.json")
MODULES = "ansible_collections.datastore.kubernetes.plugins.modules."


# -- modules in-process ----------------------------------------------------------------
class InProcessRunner:
    """Run a module's ``main()`` inside this process, the way Ansible would run it.

    Starting a Python interpreter per call costs about 0.4 s; calling ``main()`` costs
    a few milliseconds, which is what lets the bad-input test try hundreds of inputs.
    Anything ``main()`` raises other than ``SystemExit`` is what Ansible would show as
    a module traceback, so it is returned as ``{"_traceback": ...}``.
    """

    def __init__(self, env):
        self.env = env
        self.calls = 0

    def __call__(self, name, params, check=False):
        from ansible.module_utils import basic
        from ansible.module_utils.common import warnings as ansible_warnings

        args = dict(params)
        args.update(_ansible_check_mode=check, _ansible_diff=True, _ansible_verbosity=4)
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        basic._ANSIBLE_PROFILE = "legacy"
        ansible_warnings._global_warnings.clear()
        ansible_warnings._global_deprecations.clear()
        captured = []
        module = importlib.import_module(MODULES + name)
        original = basic.AnsibleModule._record_module_result
        basic.AnsibleModule._record_module_result = lambda self, result: captured.append(result)
        stdout, stderr = io.StringIO(), io.StringIO()
        saved_env = dict(os.environ)
        os.environ.update(self.env)
        self.calls += 1
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                module.main()
        except SystemExit:
            pass
        except Exception as exc:  # what Ansible reports as "MODULE FAILURE" with a traceback
            import traceback

            return {"failed": True, "_traceback": "".join(traceback.format_exception(exc)),
                    "_stdout": stdout.getvalue(), "_stderr": stderr.getvalue()}
        finally:
            basic.AnsibleModule._record_module_result = original
            basic._ANSIBLE_ARGS = None
            os.environ.clear()
            os.environ.update(saved_env)
        if not captured:
            return {"failed": True, "_traceback": "the module exited without a result",
                    "_stdout": stdout.getvalue(), "_stderr": stderr.getvalue()}
        result = captured[-1]
        result["_stdout"] = json.dumps(result, default=str) + stdout.getvalue()
        result["_stderr"] = stderr.getvalue()
        return result


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
def collections_root():
    """The directory tests/conftest.py made importable (ansible_collections/datastore/kubernetes -> the repo)."""
    for entry in sys.path:
        if os.path.isdir(os.path.join(entry, "ansible_collections", "datastore", "kubernetes")):
            return entry
    raise RuntimeError("tests/conftest.py has not linked the collection")


def ansible_playbook(localenv, args, extra_env=None, timeout=900):
    """Run ansible-playbook from this interpreter's environment against the given local environment."""
    import subprocess

    env = dict(os.environ)
    env.update(localenv)
    env.update({"ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_HOST_KEY_CHECKING": "false", "ANSIBLE_RETRY_FILES_ENABLED": "false",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins")})
    env.update(extra_env or {})
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return subprocess.run([binary] + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=REPO)
