# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Profile our modules with pyinstrument when a target was missed.

A module is run the way Ansible runs it on the target (``python -m <module> <args
file>``), with the benchmark venv's Python, which has pyinstrument and the same
ansible-core and kubernetes versions as the project's venv. The text reports go
to results/profiles/<target>.txt.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from benchlib.cases import _configmaps
from benchlib.harness import BenchError, log

MODULE = "ansible_collections.datastore.kubernetes.plugins.modules.%s"


def _sts_args(ns):
    return {"name": "db", "namespace": ns, "image": "registry.example/db:1.0", "replicas": 3,
            "ports": [{"name": "client", "container_port": 5432}], "wait": True, "wait_timeout": 300}


def _job_args(ns):
    return {"name": "load", "namespace": ns, "image": "registry.example/loader:1.0",
            "command": ["/bin/sh", "-c", "true"], "backoff_limit": 0, "wait": True, "wait_timeout": 300}


# target id -> (profile name, module, args(namespace), prime first?)
PLANS = {
    "overhead-configmap": [("configmap-noop", "configmap",
                            lambda ns: {"name": "overhead", "namespace": ns, "data": {"setting": "value"}}, True)],
    "overhead-resource": [("resource-noop", "resource",
                           lambda ns: {"definition": {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": "overhead", "namespace": ns},
                                                      "data": {"setting": "value"}}}, True)],
    "bulk-create": [("resource-bulk-create", "resource", lambda ns: {"definition": _configmaps(ns, 500)}, False)],
    "bulk-noop": [("resource-bulk-noop", "resource", lambda ns: {"definition": _configmaps(ns, 500)}, True)],
    "latency-statefulset": [("statefulset-create", "statefulset", _sts_args, False)],
    "latency-job": [("job-create", "job", _job_args, False)],
}


def _run(theirs, ours, module, args, workdir, out=None):
    path = Path(workdir) / "profile-args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(ours.collections_path))
    cmd = [str(theirs.python)]
    if out:
        cmd += ["-m", "pyinstrument", "--show-all", "-o", str(out)]
    cmd += ["-m", MODULE % module, str(path)]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    path.unlink()
    if proc.returncode != 0:
        raise BenchError("profiling %s failed: %s" % (module, proc.stdout[-1000:]))
    if out:
        # The report names the argument file; it was a temporary one, of no use to a reader.
        Path(out).write_text(Path(out).read_text().replace(str(path), "<module arguments>"))


def profile_missed(missed, theirs, ours, cluster, workdir, outdir):
    outdir.mkdir(parents=True, exist_ok=True)
    for target in missed:
        for name, module, make_args, prime in PLANS.get(target, []):
            ns = cluster.create_namespace("bench-profile-%s" % name)
            try:
                args = make_args(ns)
                if prime:
                    _run(theirs, ours, module, args, workdir)
                _run(theirs, ours, module, args, workdir, out=outdir / ("%s.txt" % name))
                log("profile of %s written to %s" % (name, outdir / ("%s.txt" % name)))
            except BenchError as exc:
                log(str(exc))
            finally:
                cluster.delete_namespace(ns)
