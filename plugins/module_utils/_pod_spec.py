# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pieces of a pod template shared by the workload modules and the roles.

The restricted security context every datastore pod runs with is defined here once
(``security_context``); the ``statefulset`` module applies it through its options and
the ``pod_security_context`` filter hands it to roles that write their own manifests.
Nothing here talks to the API server.
"""

from __future__ import annotations

__metaclass__ = type

import copy
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import is_dns_subdomain
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

DEFAULT_TOPOLOGY_KEY = "kubernetes.io/hostname"
ANTI_AFFINITY = ("none", "preferred", "required")
SECURITY_KEYS = ("run_as_user", "run_as_group", "fs_group", "read_only_root_filesystem")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def container_opening(name: str, params: Params) -> dict[str, Any]:
    """The first fields of a workload's main container: name, image, pull policy, command and args."""
    container: dict[str, Any] = {"name": name, "image": params["image"]}
    if params.get("image_pull_policy"):
        container["imagePullPolicy"] = params["image_pull_policy"]
    if params.get("command"):
        container["command"] = list(params["command"])
    if params.get("args"):
        container["args"] = list(params["args"])
    return container


# -- the shared security context -----------------------------------------------------
def _id(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, str) and value.isdigit()):
        raise InvalidInput(field, "must be a number (a UID or GID), got %r" % (value,))
    if int(value) < 0:
        raise InvalidInput(field, "must be 0 or more, got %s" % value)
    return int(value)


def security_context(options: dict[str, Any] | None, field: str = "security_context") -> dict[str, Obj]:
    """``{"pod": PodSecurityContext, "container": SecurityContext}`` of the restricted default.

    Every pod runs as a non-root user (unless ``run_as_user`` is 0, for reading root-owned files on
    the node), with seccomp ``RuntimeDefault``; every container without privilege escalation, with
    every capability dropped and, unless asked otherwise, a read-only root file system. The pod's
    group is ``fs_group`` when a UID is given and ``run_as_group`` is not: the volumes and the
    process share one group. A null UID or group leaves it to the image or the platform.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(SECURITY_KEYS))
    if unknown:
        raise InvalidInput("%s.%s" % (field, unknown[0]), "is not an option; use %s" % ", ".join(SECURITY_KEYS))
    user = _id(field + ".run_as_user", options.get("run_as_user"))
    group = _id(field + ".run_as_group", options.get("run_as_group"))
    fs_group = _id(field + ".fs_group", options.get("fs_group"))
    read_only = options.get("read_only_root_filesystem")
    if read_only is not None and not isinstance(read_only, bool):
        raise InvalidInput(field + ".read_only_root_filesystem", "must be true or false, got %r" % (read_only,))
    non_root = user != 0
    pod: Obj = {"runAsNonRoot": non_root, "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"}}
    if fs_group is not None:
        pod["fsGroup"] = fs_group
    if user is not None:
        pod["runAsUser"] = user
        if group is None:
            group = fs_group
    if group is not None:
        pod["runAsGroup"] = group
    container: Obj = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                      "runAsNonRoot": non_root, "readOnlyRootFilesystem": read_only is not False}
    return {"pod": pod, "container": container}


# -- pod-level options ---------------------------------------------------------------
def validate_pod_options(params: Params) -> None:
    """Checks of the pod-level options the argument spec cannot express. Raises ``InvalidInput``."""
    grace = params.get("termination_grace_period")
    if grace is not None and grace < 0:
        raise InvalidInput("termination_grace_period", "must be 0 or more, got %s" % grace)
    if params.get("anti_affinity") not in (None,) + ANTI_AFFINITY:
        raise InvalidInput("anti_affinity", "must be one of %s, got %r"
                           % (", ".join(ANTI_AFFINITY), params.get("anti_affinity")))
    key = params.get("anti_affinity_topology_key")
    if key is not None and not _label_key(key):
        raise InvalidInput("anti_affinity_topology_key", "%r is not a label key (for example %s)"
                           % (key, DEFAULT_TOPOLOGY_KEY))
    pre_stop = params.get("pre_stop")
    if pre_stop is not None:
        if (pre_stop.get("command") is None) == (pre_stop.get("sleep") is None):
            raise InvalidInput("pre_stop", "set exactly one of command and sleep")
        if pre_stop.get("command") is not None and not pre_stop["command"]:
            raise InvalidInput("pre_stop.command", "must name a program to run")
        if pre_stop.get("sleep") is not None and pre_stop["sleep"] < 0:
            raise InvalidInput("pre_stop.sleep", "must be 0 or more seconds, got %s" % pre_stop["sleep"])
        if grace is not None and pre_stop.get("sleep") is not None and pre_stop["sleep"] >= max(grace, 1):
            raise InvalidInput("pre_stop.sleep", "%s seconds leave no time to stop within termination_grace_period "
                                                 "%s" % (pre_stop["sleep"], grace))
    for label, value in (params.get("node_selector") or {}).items():
        if not _label_key(label):
            raise InvalidInput("node_selector.%s" % label, "is not a label key")
        if not isinstance(value, str):
            raise InvalidInput("node_selector.%s" % label, "must be a string, got %s %r; quote it in YAML"
                               % (type(value).__name__, value))
    for idx, item in enumerate(params.get("tolerations") or []):
        _check_toleration("tolerations[%d]" % idx, item)
    if params.get("security_context") is not None:
        security_context(params["security_context"])


def _label_key(key: object) -> bool:
    if not isinstance(key, str) or not key:
        return False
    prefix, _slash, name = key.rpartition("/")
    if prefix and not is_dns_subdomain(prefix):
        return False
    return 0 < len(name) <= 63 and name[0].isalnum() and name[-1].isalnum() and \
        all(c.isalnum() or c in "-_." for c in name)


def _check_toleration(field: str, item: object) -> None:
    if not isinstance(item, dict):
        raise InvalidInput(field, "must be a Kubernetes Toleration mapping")
    unknown = sorted(set(item) - {"key", "operator", "value", "effect", "tolerationSeconds"})
    if unknown:
        raise InvalidInput("%s.%s" % (field, unknown[0]), "is not a Toleration field")
    operator = item.get("operator", "Equal")
    if operator not in TOLERATION_OPERATORS:
        raise InvalidInput(field + ".operator", "must be Exists or Equal, got %r" % (operator,))
    if operator == "Exists" and item.get("value"):
        raise InvalidInput(field + ".value", "must be empty with operator Exists")
    if not item.get("key") and operator != "Exists":
        raise InvalidInput(field + ".key", "is required unless operator is Exists")
    if item.get("effect") not in (None, "") + TOLERATION_EFFECTS:
        raise InvalidInput(field + ".effect", "must be one of %s, got %r"
                           % (", ".join(TOLERATION_EFFECTS), item.get("effect")))


def _anti_affinity(mode: str, selector: dict[str, str], topology_key: str) -> Obj:
    term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": topology_key}
    if mode == "required":
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}


def pod_options(params: Params, main: str, selector: dict[str, str]) -> tuple[Obj, dict[str, str]]:
    """The pod spec fields the pod-level options ask for, and which option set each field.

    ``main`` names the main container (its ``preStop`` hook); ``selector`` selects the workload's own
    pods, the ones anti-affinity keeps apart. Returns ``(fields, {field path: option})``.
    """
    pod: Obj = {}
    origin: dict[str, str] = {}

    def put(path: str, option: str, value: Any) -> None:
        node = pod
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        origin[path] = option

    if params.get("termination_grace_period") is not None:
        put("terminationGracePeriodSeconds", "termination_grace_period", params["termination_grace_period"])
    for option, field in (("enable_service_links", "enableServiceLinks"),
                          ("automount_service_account_token", "automountServiceAccountToken")):
        if params.get(option) is not None:
            put(field, option, params[option])
    if params.get("node_selector"):
        put("nodeSelector", "node_selector", dict(params["node_selector"]))
    if params.get("tolerations"):
        put("tolerations", "tolerations", copy.deepcopy(params["tolerations"]))
    if params.get("anti_affinity") not in (None, "none"):
        affinity = _anti_affinity(params["anti_affinity"], selector,
                                  params.get("anti_affinity_topology_key") or DEFAULT_TOPOLOGY_KEY)
        put("affinity.podAntiAffinity", "anti_affinity", affinity["podAntiAffinity"])
    if params.get("security_context") is not None:
        for key, value in security_context(params["security_context"])["pod"].items():
            put("securityContext." + key, "security_context", value)
    pre_stop = params.get("pre_stop")
    if pre_stop is not None:
        hook = {"exec": {"command": list(pre_stop["command"])}} if pre_stop.get("command") is not None \
            else {"sleep": {"seconds": pre_stop["sleep"]}}
        pod["containers"] = [{"name": main, "lifecycle": {"preStop": hook}}]
        origin["containers[%s].lifecycle.preStop" % main] = "pre_stop"
    return pod, origin


def _get(obj: Any, path: str) -> tuple[bool, Any]:
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return False, None
        obj = obj[key]
    return True, obj


def check_conflicts(origin: dict[str, str], pod: Obj, defined_pod: Obj) -> None:
    """Fail when ``definition`` sets a pod field to something other than an option sets it to."""
    for path, option in sorted(origin.items()):
        if path.startswith("containers["):
            name, _sep, sub = path[len("containers["):].partition("].")
            mine = [c for c in pod.get("containers") or [] if c.get("name") == name]
            theirs = [c for c in defined_pod.get("containers") or []
                      if isinstance(c, dict) and c.get("name") == name]
            if not mine or not theirs:
                continue
            found, value = _get(theirs[0], sub)
            want = _get(mine[0], sub)[1]
            where = "spec.template.spec.containers[name=%s].%s" % (name, sub)
        else:
            found, value = _get(defined_pod, path)
            want = _get(pod, path)[1]
            where = "spec.template.spec." + path
        if found and value != want:
            raise InvalidInput(option, "conflicts with definition %s (%r here, %r there); set it in one place"
                               % (where, want, value))


def secure_containers(pod_spec: Obj, container_context: Obj) -> None:
    """Give every container and init container without a ``securityContext`` of its own the shared one."""
    for field in ("initContainers", "containers"):
        for container in pod_spec.get(field) or []:
            if isinstance(container, dict) and not container.get("securityContext"):
                container["securityContext"] = copy.deepcopy(container_context)
