"""Check mode of a play that also creates the namespace: later tasks report 'would create', not a 404."""

from __future__ import annotations

import uuid

import pytest

CASES = {
    "configmap": {"name": "settings", "from_literal": {"a": "b"}},
    "statefulset": {"name": "db", "image": "example/db:1", "replicas": 1},
    "job": {"name": "load", "image": "example/load:1"},
    "resource": {"definition": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}},
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_check_mode_into_a_namespace_that_does_not_exist_yet(module, run_module, kubectl):
    namespace = "not-yet-" + uuid.uuid4().hex[:8]
    result = run_module(module, dict(CASES[module], namespace=namespace), check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    missing = kubectl("get", "namespace", namespace, check=False)
    assert missing.returncode != 0, "check mode created the namespace"
