"""Rolling restarts (plugins/module_utils/_rollout.py): lookups, the pod template patch, errors naming the workload."""

from __future__ import annotations

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _rollout
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import KubeApiError


class Client:
    def __init__(self, objects, refuse=False):
        self.objects, self.refuse, self.patches = objects, refuse, []

    def get(self, api_version, kind, name, namespace=None):
        return self.objects.get((kind, namespace, name))

    def patch(self, api_version, kind, name, namespace, patch):
        if self.refuse:
            raise KubeApiError("PATCH x: 403 forbidden", status=403)
        self.patches.append((api_version, kind, namespace, name, patch))


STS = {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "data"},
       "spec": {"template": {"metadata": {"annotations": {"a": "1"}}}}}


def test_find_reports_what_is_missing():
    client = Client({("StatefulSet", "data", "db"): STS})
    found, missing = _rollout.find_workloads(client, [{"kind": "StatefulSet", "name": "db"},
                                                      {"kind": "Deployment", "name": "web", "namespace": "apps"}], "data")
    assert found == [STS] and missing == ["Deployment apps/web"]
    assert _rollout.template_annotations(STS) == {"a": "1"}


def test_restart_patches_the_pod_template():
    client = Client({})
    assert _rollout.restart(client, STS, {"why": "x"}) == {"kind": "StatefulSet", "name": "db", "namespace": "data"}
    (api_version, kind, namespace, name, patch), = client.patches
    annotations = patch["spec"]["template"]["metadata"]["annotations"]
    assert (api_version, kind, namespace, name) == ("apps/v1", "StatefulSet", "data", "db")
    assert annotations["why"] == "x" and annotations[_rollout.RESTARTED_AT].endswith("Z")


def test_check_mode_patches_nothing():
    client = Client({})
    _rollout.restart(client, STS, check_mode=True)
    assert client.patches == []


def test_a_refused_restart_names_the_workload():
    with pytest.raises(KubeApiError) as err:
        _rollout.restart(Client({}, refuse=True), STS, reason="after the credentials changed")
    assert err.value.msg == "StatefulSet data/db: rollout restart failed after the credentials changed: PATCH x: 403 forbidden"
