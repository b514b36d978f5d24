"""Unit tests of the statefulset module's pod-level options: what they build, how they merge with definition,
and the checks that name the field before anything is written."""

from __future__ import annotations

import pytest
from testlib import option_defaults

from ansible_collections.datastore.kubernetes.plugins.module_utils import _pod_spec as pod_spec
from ansible_collections.datastore.kubernetes.plugins.module_utils import _statefulset_spec as spec
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.modules.statefulset import argument_spec

SELECTOR = {"datastore.kubernetes/statefulset": "pg"}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True, "readOnlyRootFilesystem": True}


def params(**over):
    base = option_defaults(argument_spec())
    base.update({"name": "pg", "namespace": "db", "image": "postgres:17"})
    base.update(over)
    return base


def build(**over):
    p = params(**over)
    spec.validate(p)
    return spec.build_statefulset(p)


def pod_of(sts):
    return sts["spec"]["template"]["spec"]


def fails(field, **over):
    with pytest.raises(InvalidInput) as info:
        build(**over)
    assert info.value.field == field, info.value.msg
    return info.value.msg


# -- what the options build ----------------------------------------------------------
def test_no_pod_option_adds_nothing():
    pod = pod_of(build())
    assert set(pod) == {"containers"}
    assert set(pod["containers"][0]) == {"name", "image"}


def test_every_pod_option():
    pod = pod_of(build(
        termination_grace_period=120, pre_stop={"command": ["sh", "/s", "stop"], "sleep": None},
        anti_affinity="required", security_context={"run_as_user": 999, "fs_group": 999},
        node_selector={"disk": "ssd"}, tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                                     "effect": "NoSchedule"}],
        enable_service_links=False, automount_service_account_token=False))
    assert pod["terminationGracePeriodSeconds"] == 120
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["tolerations"][0]["value"] == "db"
    assert pod["affinity"] == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": SELECTOR}, "topologyKey": "kubernetes.io/hostname"}]}}
    assert pod["securityContext"] == {"runAsNonRoot": True, "fsGroupChangePolicy": "OnRootMismatch",
                                      "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 999,
                                      "runAsUser": 999, "runAsGroup": 999}
    main = pod["containers"][0]
    assert main["image"] == "postgres:17"
    assert main["lifecycle"] == {"preStop": {"exec": {"command": ["sh", "/s", "stop"]}}}
    assert main["securityContext"] == RESTRICTED_CONTAINER


def test_preferred_anti_affinity_with_topology_key_and_sleep_hook():
    pod = pod_of(build(anti_affinity="preferred", anti_affinity_topology_key="topology.kubernetes.io/zone",
                       pre_stop={"command": None, "sleep": 15}, termination_grace_period=120))
    assert pod["affinity"]["podAntiAffinity"] == {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": SELECTOR},
                                            "topologyKey": "topology.kubernetes.io/zone"}}]}
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}


def test_anti_affinity_none_adds_no_rule():
    assert "affinity" not in pod_of(build(anti_affinity="none"))


def test_anti_affinity_selects_the_definition_selector():
    pod = pod_of(build(anti_affinity="required", definition={"spec": {"selector": {"matchLabels": {"app": "x"}}}}))
    term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["labelSelector"] == {"matchLabels": {"app": "x"}}


def test_security_context_reaches_init_containers_and_sidecars_without_their_own():
    own = {"runAsUser": 5}
    pod = pod_of(build(security_context={"read_only_root_filesystem": False},
                       init_containers=[{"name": "init", "image": "i:1"},
                                        {"name": "own", "image": "i:1", "securityContext": own}],
                       sidecars=[{"name": "agent", "image": "a:1"}]))
    assert pod["securityContext"] == {"runAsNonRoot": True, "fsGroupChangePolicy": "OnRootMismatch",
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    relaxed = dict(RESTRICTED_CONTAINER, readOnlyRootFilesystem=False)
    assert [c.get("securityContext") for c in pod["containers"]] == [relaxed, relaxed]
    assert [c.get("securityContext") for c in pod["initContainers"]] == [relaxed, own]


def test_security_context_shared_default():
    ctx = pod_spec.security_context({"fs_group": 1000})
    assert ctx["pod"] == {"runAsNonRoot": True, "fsGroupChangePolicy": "OnRootMismatch",
                          "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 1000}
    assert ctx["container"] == RESTRICTED_CONTAINER
    # An explicit group wins over fs_group; UID 0 drops runAsNonRoot, never the capabilities.
    ctx = pod_spec.security_context({"run_as_user": 0, "run_as_group": 0, "fs_group": 65534})
    assert ctx["pod"]["runAsNonRoot"] is False and ctx["pod"]["runAsGroup"] == 0
    assert ctx["container"]["runAsNonRoot"] is False
    assert ctx["container"]["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec.security_context({})["pod"] == {"runAsNonRoot": True, "fsGroupChangePolicy": "OnRootMismatch",
                                                    "seccompProfile": {"type": "RuntimeDefault"}}


# -- merging with definition ---------------------------------------------------------
def test_definition_may_add_to_what_the_options_set():
    pod = pod_of(build(security_context={"run_as_user": 999}, anti_affinity="preferred", termination_grace_period=60,
                       definition={"spec": {"template": {"spec": {
                           "terminationGracePeriodSeconds": 60,
                           "securityContext": {"supplementalGroups": [5], "runAsUser": 999},
                           "affinity": {"nodeAffinity": {"x": 1}},
                           "containers": [{"name": "pg", "lifecycle": {"postStart": {"sleep": {"seconds": 1}}}}]}}}}))
    assert pod["securityContext"]["supplementalGroups"] == [5]
    assert pod["securityContext"]["runAsUser"] == 999
    assert set(pod["affinity"]) == {"nodeAffinity", "podAntiAffinity"}
    assert pod["containers"][0]["lifecycle"] == {"postStart": {"sleep": {"seconds": 1}}}


@pytest.mark.parametrize("option, value, defined, where", [
    ("termination_grace_period", 30, {"terminationGracePeriodSeconds": 60}, "terminationGracePeriodSeconds"),
    ("enable_service_links", False, {"enableServiceLinks": True}, "enableServiceLinks"),
    ("automount_service_account_token", False, {"automountServiceAccountToken": True}, "automountServiceAccountToken"),
    ("node_selector", {"a": "b"}, {"nodeSelector": {"a": "c"}}, "nodeSelector"),
    ("tolerations", [{"operator": "Exists"}], {"tolerations": []}, "tolerations"),
    ("anti_affinity", "required", {"affinity": {"podAntiAffinity": {}}}, "affinity.podAntiAffinity"),
    ("security_context", {"run_as_user": 1}, {"securityContext": {"runAsUser": 2}}, "securityContext.runAsUser"),
    ("pre_stop", {"command": None, "sleep": 5},
     {"containers": [{"name": "pg", "lifecycle": {"preStop": {"exec": {"command": ["x"]}}}}]},
     "containers[name=pg].lifecycle.preStop"),
])
def test_conflict_with_definition_names_both(option, value, defined, where):
    msg = fails(option, **{option: value, "definition": {"spec": {"template": {"spec": defined}}}})
    assert "definition spec.template.spec." + where in msg


def test_pre_stop_needs_the_main_container():
    definition = {"spec": {"template": {"spec": {"containers": [{"name": "other", "image": "x:1"}]}}}}
    assert "main container 'pg'" in fails("pre_stop", image=None, pre_stop={"command": ["x"], "sleep": None},
                                          definition=definition)
    definition["spec"]["template"]["spec"]["containers"][0]["name"] = "pg"
    pod = pod_of(build(image=None, pre_stop={"command": ["x"], "sleep": None}, definition=definition))
    assert pod["containers"][0]["lifecycle"]["preStop"] == {"exec": {"command": ["x"]}}


# -- validation ----------------------------------------------------------------------
@pytest.mark.parametrize("field, over", [
    ("termination_grace_period", {"termination_grace_period": -1}),
    ("pre_stop.sleep", {"pre_stop": {"command": None, "sleep": -1}}),
    ("pre_stop.sleep", {"pre_stop": {"command": None, "sleep": 30}, "termination_grace_period": 30}),
    ("pre_stop.command", {"pre_stop": {"command": [], "sleep": None}}),
    ("pre_stop", {"pre_stop": {"command": None, "sleep": None}}),
    ("anti_affinity_topology_key", {"anti_affinity": "required", "anti_affinity_topology_key": "bad key"}),
    ("node_selector.disk", {"node_selector": {"disk": True}}),
    ("node_selector.a b", {"node_selector": {"a b": "x"}}),
    ("tolerations[0]", {"tolerations": ["NoSchedule"]}),
    ("tolerations[0].operator", {"tolerations": [{"key": "a", "operator": "In"}]}),
    ("tolerations[0].key", {"tolerations": [{"value": "a"}]}),
    ("tolerations[0].effect", {"tolerations": [{"key": "a", "effect": "Never"}]}),
    ("tolerations[1].value", {"tolerations": [{"operator": "Exists"},
                                              {"key": "a", "operator": "Exists", "value": "b"}]}),
    ("tolerations[0].seconds", {"tolerations": [{"key": "a", "seconds": 1}]}),
    ("security_context.run_as_user", {"security_context": {"run_as_user": -1}}),
    ("security_context.fs_group", {"security_context": {"fs_group": "root"}}),
    ("security_context.privileged", {"security_context": {"privileged": True}}),
])
def test_bad_pod_option_names_the_field(field, over):
    fails(field, **over)


# -- the filter roles use for their own manifests ------------------------------------
def test_filter_gives_the_same_context_as_the_module():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.datastore.kubernetes.plugins.filter.pod_security_context import FilterModule

    filt = FilterModule().filters()["pod_security_context"]
    options = {"run_as_user": 0, "fs_group": 65534}
    assert filt(options) == pod_spec.security_context(options)["pod"]
    assert filt(options, "container") == pod_spec.security_context(options)["container"]
    assert filt(options)["runAsGroup"] == 65534 and filt(options)["runAsNonRoot"] is False
    for bad, words in (((options, "init"), "part"), (("999",), "mapping"), (({"run_as_user": "x"},), "run_as_user")):
        with pytest.raises(AnsibleFilterError) as info:
            filt(*bad)
        assert words in str(info.value)
