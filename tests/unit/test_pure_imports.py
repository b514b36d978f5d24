"""The pure pieces of module_utils (argument specs, the task contract, names, manifests, lease logic)
import no client library: a unit test or a tool can use them where urllib3 and hvac are missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = ("_argspec", "_task", "_errors", "_names", "_masking", "_pod_spec", "_statefulset_spec", "_statefulset_report",
        "_vault_lease", "_batch", "_rollout", "_day2_plan")
HEAVY = ("urllib3", "hvac", "requests", "kubernetes")


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports_no_client_library(name):
    code = ("import sys; sys.path[:0] = %r\n"
            "import ansible_collections.datastore.kubernetes.plugins.module_utils.%s\n"
            "print(sorted(m for m in %r if m in sys.modules))\n" % (sys.path, name, HEAVY))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
