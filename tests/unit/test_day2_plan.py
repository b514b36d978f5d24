"""Plans of the day-2 operations: order, stuck pods, template changes, the PostgreSQL gate, safe scale-down."""

from __future__ import annotations

import json

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _day2_plan as plan
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput


def pod(name, rev="r1", ready=True, terminating=False):
    meta = {"name": name, "labels": {plan.REVISION_LABEL: rev}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def sts(strategy=None, containers=None, annotations=None):
    spec = {"template": {"metadata": {"annotations": annotations or {}},
                         "spec": {"containers": containers or [{"name": "postgres", "image": "pg:17"},
                                                               {"name": "exporter", "image": "exp:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return {"metadata": {"name": "postgres", "namespace": "db"}, "spec": spec}


def test_order_is_highest_first_and_primary_last():
    assert plan.update_order(["pg-0", "pg-1", "pg-10", "pg-2"], "pg-0") == ["pg-10", "pg-2", "pg-1", "pg-0"]
    # After a switchover the primary may be any ordinal; it still goes last.
    assert plan.update_order(["pg-0", "pg-1", "pg-2"], "pg-1") == ["pg-2", "pg-0", "pg-1"]
    assert plan.update_order(["pg-0", "pg-1"], None) == ["pg-1", "pg-0"]


def test_members_ignores_pods_of_other_workloads():
    pods = [pod("postgres-1"), pod("postgres-backup-0"), pod("postgres-0")]
    assert [plan.pod_name(p) for p in plan.members(sts(), pods)] == ["postgres-0", "postgres-1"]


def test_plan_replaces_only_pods_off_the_target_revision():
    pods = [pod("pg-0", "old"), pod("pg-1", "new"), pod("pg-2", "old")]
    assert plan.plan_update(pods, "new", False, "pg-0") == {"stuck": [], "order": ["pg-2", "pg-0"]}
    # A template change about to be written: every pod goes.
    assert plan.plan_update(pods, "new", True, "pg-0")["order"] == ["pg-2", "pg-1", "pg-0"]
    assert plan.plan_update([pod("pg-0", "new")], "new", False, "pg-0") == {"stuck": [], "order": []}


def test_a_pod_not_ready_on_an_old_revision_is_stuck_and_goes_first():
    pods = [pod("pg-0", "old"), pod("pg-1", "old", ready=False), pod("pg-2", "old")]
    steps = plan.plan_update(pods, "new", False, "pg-0")
    assert steps == {"stuck": ["pg-1"], "order": ["pg-1", "pg-2", "pg-0"]}
    # Not ready on the new revision is not stuck (a replaced pod starting); terminating is not stuck either.
    assert plan.plan_update([pod("pg-1", "new", ready=False)], "new", False, None)["stuck"] == []
    assert plan.plan_update([pod("pg-1", "old", ready=False, terminating=True)], "new", False, None)["stuck"] == []


def test_template_patch_changes_one_container_and_sends_the_list_whole():
    patch, before, after = plan.template_patch(sts(), "postgres", image="pg:17.6")
    assert patch == {"spec": {"containers": [{"name": "postgres", "image": "pg:17.6"},
                                             {"name": "exporter", "image": "exp:1"}]}}
    assert before == {"image": "pg:17"} and after == {"image": "pg:17.6"}
    assert plan.template_patch(sts(), "postgres", image="pg:17") == ({}, {}, {})


def test_resources_compare_by_quantity():
    current = sts(containers=[{"name": "postgres", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}])
    same = {"requests": {"cpu": "1000m", "memory": "1024Mi"}}
    assert plan.template_patch(current, "postgres", resources=same)[0] == {}
    patch = plan.template_patch(current, "postgres", resources={"requests": {"cpu": "500m", "memory": "1Gi"}})[0]
    assert patch["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    with pytest.raises(InvalidInput, match="resources.limits.memory"):
        plan.validate_resources({"limits": {"memory": "lots"}})
    with pytest.raises(InvalidInput, match="resources: unknown key"):
        plan.validate_resources({"request": {}})


def test_annotations_change_only_when_different():
    current = sts(annotations={plan.CONFIG_HASH: "abc"})
    assert plan.template_patch(current, "postgres", annotations={plan.CONFIG_HASH: "abc"})[0] == {}
    patch, before, after = plan.template_patch(current, "postgres", annotations={plan.CONFIG_HASH: "def"})
    assert patch == {"metadata": {"annotations": {plan.CONFIG_HASH: "def"}}}
    assert before["annotations"] == {plan.CONFIG_HASH: "abc"}


def test_config_hash_follows_content_not_order():
    a = {"metadata": {"name": "a"}, "data": {"postgresql.conf": "x = 1"}}
    b = {"metadata": {"name": "b"}, "data": {"k": "v"}}
    assert plan.config_hash([a, b]) == plan.config_hash([b, a])
    changed = {"metadata": {"name": "a"}, "data": {"postgresql.conf": "x = 2"}}
    assert plan.config_hash([changed, b]) != plan.config_hash([a, b])


def test_pick_container_names_the_field():
    assert plan.pick_container(sts(), None) == "postgres"
    with pytest.raises(InvalidInput, match="container: 'db' is not a container.*postgres, exporter"):
        plan.pick_container(sts(), "db")


def test_strategy_is_taken_over_and_given_back():
    partitioned = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    obj = sts(strategy=partitioned)
    takeover = plan.strategy_takeover(obj)
    assert takeover["spec"]["updateStrategy"] == {"type": "OnDelete", "rollingUpdate": None}
    saved = takeover["metadata"]["annotations"][plan.SAVED_STRATEGY]
    assert json.loads(saved) == partitioned
    # Already OnDelete (the user's, or an interrupted run's): nothing to take over.
    assert plan.strategy_takeover(sts(strategy={"type": "OnDelete"})) is None
    after = {"metadata": {"name": "postgres", "annotations": {plan.SAVED_STRATEGY: saved}},
             "spec": {"updateStrategy": {"type": "OnDelete"}}}
    assert plan.strategy_restore(after) == {"metadata": {"annotations": {plan.SAVED_STRATEGY: None}},
                                            "spec": {"updateStrategy": partitioned}}
    assert plan.strategy_restore(sts(strategy={"type": "OnDelete"})) is None
    # A default strategy comes back as the default.
    default = plan.strategy_takeover(sts())
    back = plan.strategy_restore({"metadata": default["metadata"]})
    assert back["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": None}


def primary_row(*rows, in_recovery=False):
    return {"in_recovery": in_recovery, "replication": [
        {"client_addr": ip, "state": state, "lag_bytes": lag} for ip, state, lag in rows]}


def test_postgres_gate_is_read_off_the_primary():
    ips = {"pg-2": "10.0.0.12", "pg-1": "10.0.0.11"}
    streaming = primary_row(("10.0.0.11", "streaming", 0), ("10.0.0.12", "streaming", 512))
    assert plan.postgres_primary_gate(streaming, "pg-0", ips, 1024) == []
    assert plan.postgres_primary_gate(streaming, "pg-0", ips, 100) == ["pg-2: replay lag 512 bytes > 100"]
    catching_up = primary_row(("10.0.0.11", "catchup", 0))
    assert plan.postgres_primary_gate(catching_up, "pg-0", ips, 1024) == [
        "pg-1: catchup, not streaming", "pg-2: not connected to the primary pg-0"]
    # A replica whose pod has no address yet is not connected, whatever the rows say.
    assert plan.postgres_primary_gate(streaming, "pg-0", {"pg-1": None}, 1024) == [
        "pg-1: not connected to the primary pg-0"]
    assert plan.postgres_primary_gate(primary_row(in_recovery=True), "pg-0", {}, 0) == [
        "pg-0: in recovery, not the primary"]
    assert plan.postgres_primary_gate(None, "pg-0", {}, 0) == ["pg-0: did not answer"]


def test_scale_down_keeps_the_primary():
    steps = plan.plan_scale_down("pg", 4, 2, "pg-0", "postgres")
    assert steps == {"from": 4, "to": 2, "remove": ["pg-3", "pg-2"], "slots": ["pg_3", "pg_2"]}
    with pytest.raises(InvalidInput, match="replicas: 0 would remove the PostgreSQL primary pg-0"):
        plan.plan_scale_down("pg", 3, 0, "pg-0", "postgres")
    with pytest.raises(InvalidInput, match="replicas: 1 would remove pg-2, which is the primary"):
        plan.plan_scale_down("pg", 3, 1, "pg-2", "postgres")
    assert plan.plan_scale_down("web", 2, 0, None, "none")["remove"] == ["web-1", "web-0"]


def test_slot_and_claim_names_follow_the_role():
    assert plan.slot_name("postgres-2") == "postgres_2"
    assert plan.claim_names(sts(), ["postgres-2", "postgres-1"]) == ["data-postgres-2", "data-postgres-1"]
