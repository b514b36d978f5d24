# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the ``statefulset`` module: input checks, manifests, immutable-field checks.

Nothing here talks to the API server, so all of it is unit-tested without a cluster.
"""

from __future__ import annotations

__metaclass__ = type

import copy
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import check_dns_domain, check_dns_label, is_dns_subdomain
from ansible_collections.datastore.kubernetes.plugins.module_utils._pod_spec import (
    check_conflicts,
    container_opening,
    pod_options,
    secure_containers,
    security_context,
    validate_pod_options,
)
from ansible_collections.datastore.kubernetes.plugins.module_utils._types import Obj, Params

SELECTOR_LABEL = "datastore.kubernetes/statefulset"
MANAGED_BY = "datastore.kubernetes"

IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[mkMGTPE]|)$")
_SUFFIX: dict[str, Decimal | int] = {
    "": 1, "m": Decimal("0.001"), "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15,
    "E": 10 ** 18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
# The controller adds "controller-revision-hash: <name>-<10 chars>" to every pod; labels are <= 63.
MAX_STS_NAME = 52


# -- checks ------------------------------------------------------------------------
def check_port_name(field: str, value: object) -> None:
    """IANA_SVC_NAME: what Kubernetes requires of a port name that SRV records are made of."""
    if (not isinstance(value, str) or len(value) > 15 or not IANA_SVC_NAME.match(value) or "--" in value
            or not re.search(r"[a-z]", value)):
        raise InvalidInput(field, "%r is not a valid port name (IANA_SVC_NAME): at most 15 lower-case letters, "
                                  "digits and '-', with at least one letter, no '--' and no '-' at either end"
                           % (value,))


def parse_quantity(value: object, field: str = "size") -> Decimal:
    """A Kubernetes quantity (``10Gi``, ``500M``, ``1e3``) as a ``Decimal``."""
    text = str(value).strip()
    match = QUANTITY.match(text)
    if not match:
        raise InvalidInput(field, "%r is not a Kubernetes quantity (for example 10Gi or 500M)" % (value,))
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise InvalidInput(field, "%r is not a Kubernetes quantity (for example 10Gi or 500M)" % (value,))
    if suffix[:1] in ("e", "E"):
        return base * (Decimal(10) ** int(suffix[1:]))
    return base * Decimal(_SUFFIX[suffix])


def _string_map(field: str, value: object) -> dict[str, str]:
    """Labels and annotations: every value must already be a string (YAML ``true`` is not ``"true"``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a mapping of strings")
    for key, val in value.items():
        if not isinstance(val, str):
            raise InvalidInput("%s.%s" % (field, key), "must be a string, got %s %r; quote it in YAML"
                               % (type(val).__name__, val))
    return dict(value)


def _env_list(env: object) -> list[dict[str, Any]]:
    """``env`` as a mapping (value or valueFrom mapping) or as a list of EnvVar, as a list of EnvVar."""
    if env is None:
        return []
    if isinstance(env, list):
        for idx, item in enumerate(env):
            if not isinstance(item, dict) or not item.get("name"):
                raise InvalidInput("env[%d]" % idx, "each item must be a mapping with a name")
        return copy.deepcopy(env)
    if not isinstance(env, dict):
        raise InvalidInput("env", "must be a mapping of names to values or a list of EnvVar mappings")
    out = []
    for key, val in env.items():
        if isinstance(val, dict):
            out.append({"name": key, "valueFrom": copy.deepcopy(val)})
        elif isinstance(val, bool) or val is None or isinstance(val, (list, tuple)):
            raise InvalidInput("env.%s" % key,
                               "must be a string, a number or a valueFrom mapping, got %r; quote it in YAML" % (val,))
        else:
            out.append({"name": key, "value": str(val)})
    return out


def _env_from(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for idx, item in enumerate(items or []):
        ref = {"configMapRef": {"name": item["config_map"]}} if item.get("config_map") else \
            {"secretRef": {"name": item["secret"]}}
        if item.get("optional") is not None:
            list(ref.values())[0]["optional"] = item["optional"]
        if item.get("prefix"):
            ref["prefix"] = item["prefix"]
        out.append(ref)
    return out


def validate(params: Params) -> None:
    """Cross-field and format checks that the argument spec cannot express. Raises ``InvalidInput``."""
    check_dns_label("name", params.get("name"), MAX_STS_NAME)
    check_dns_label("namespace", params.get("namespace"))
    svc = params.get("service") or {}
    if svc.get("name") is not None:
        check_dns_label("service.name", svc["name"])
    if params.get("replicas") is not None and params["replicas"] < 0:
        raise InvalidInput("replicas", "must be 0 or more, got %s" % params["replicas"])
    if params.get("seed_count") is not None and params["seed_count"] < 0:
        raise InvalidInput("seed_count", "must be 0 or more, got %s" % params["seed_count"])
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 0:
        raise InvalidInput("wait_timeout", "must be 0 or more, got %s" % params["wait_timeout"])
    domain = params.get("cluster_domain")
    if domain is not None:
        check_dns_domain("cluster_domain", domain)
    strategy = params.get("update_strategy") or {}
    if strategy.get("partition") is not None:
        if strategy.get("type") == "OnDelete":
            raise InvalidInput("update_strategy.partition", "cannot be used with update_strategy.type=OnDelete; "
                                                            "a partition applies to RollingUpdate only")
        if strategy["partition"] < 0:
            raise InvalidInput("update_strategy.partition", "must be 0 or more, got %s" % strategy["partition"])
    seen = {}
    for idx, port in enumerate(params.get("ports") or []):
        check_port_name("ports[%d].name" % idx, port["name"])
        if not 1 <= port["container_port"] <= 65535:
            raise InvalidInput("ports[%d].container_port" % idx, "must be between 1 and 65535")
        if port["name"] in seen:
            raise InvalidInput("ports[%d].name" % idx, "%r is used twice" % port["name"])
        seen[port["name"]] = idx
    names = set()
    for idx, tmpl in enumerate(params.get("volume_claim_templates") or []):
        check_dns_label("volume_claim_templates[%d].name" % idx, tmpl["name"])
        if tmpl["name"] in names:
            raise InvalidInput("volume_claim_templates[%d].name" % idx, "%r is used twice" % tmpl["name"])
        names.add(tmpl["name"])
        size = parse_quantity(tmpl["size"], "volume_claim_templates[%d].size" % idx)
        if size <= 0:
            raise InvalidInput("volume_claim_templates[%d].size" % idx, "must be more than 0")
        if tmpl.get("storage_class") is not None and not is_dns_subdomain(tmpl["storage_class"]):
            raise InvalidInput("volume_claim_templates[%d].storage_class" % idx,
                               "%r is not a valid StorageClass name" % tmpl["storage_class"])
        if tmpl.get("mount_path") is not None and not tmpl["mount_path"].startswith("/"):
            raise InvalidInput("volume_claim_templates[%d].mount_path" % idx, "must be an absolute path")
    for idx, item in enumerate(params.get("env_from") or []):
        if bool(item.get("config_map")) == bool(item.get("secret")):
            raise InvalidInput("env_from[%d]" % idx, "set exactly one of config_map and secret")
    for field in ("labels", "annotations", "pod_annotations"):
        _string_map(field, params.get(field))
    for field in ("labels", "annotations"):
        _string_map("service." + field, svc.get(field))
    for field in ("init_containers", "sidecars"):
        for idx, item in enumerate(params.get(field) or []):
            if not isinstance(item, dict) or not item.get("name") or not item.get("image"):
                raise InvalidInput("%s[%d]" % (field, idx), "each container needs a name and an image")
    _env_list(params.get("env"))
    validate_pod_options(params)
    definition = params.get("definition")
    if definition is not None:
        if not isinstance(definition, dict):
            raise InvalidInput("definition", "must be a StatefulSet manifest (a mapping)")
        if definition.get("kind", "StatefulSet") != "StatefulSet":
            raise InvalidInput("definition", "kind must be StatefulSet, got %r" % definition.get("kind"))
        if definition.get("apiVersion", "apps/v1") != "apps/v1":
            raise InvalidInput("definition", "apiVersion must be apps/v1, got %r" % definition.get("apiVersion"))
        meta = definition.get("metadata") or {}
        for key in ("name", "namespace"):
            if meta.get(key) not in (None, params.get(key)):
                raise InvalidInput("definition", "metadata.%s %r differs from the %s option %r"
                                   % (key, meta[key], key, params.get(key)))
    defined = ((((definition or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    if params.get("state") != "absent" and params.get("image") is None and not defined:
        raise InvalidInput("image", "is required unless definition sets spec.template.spec.containers")


# -- manifests -----------------------------------------------------------------------
def _merge_key(item: object) -> Any:
    if not isinstance(item, dict):
        return None
    if "name" in item:
        return item["name"]
    meta = item.get("metadata")
    if isinstance(meta, dict) and "name" in meta:
        return meta["name"]
    return None


def deep_merge(base: Any, over: Any) -> Any:
    """``over`` merged into a copy of ``base``.

    Mappings merge recursively; lists of named items (containers, env, volumes,
    volumeClaimTemplates) merge item by item on the name, like a strategic merge
    patch; any other value in ``over`` replaces the one in ``base``.
    """
    out: Any
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for key, val in over.items():
            out[key] = deep_merge(base[key], val) if key in base else copy.deepcopy(val)
        return out
    if isinstance(base, list) and isinstance(over, list) and over and \
            all(_merge_key(i) is not None for i in base + over):
        out = [copy.deepcopy(i) for i in base]
        index = {_merge_key(i): n for n, i in enumerate(out)}
        for item in over:
            key = _merge_key(item)
            if key in index:
                out[index[key]] = deep_merge(out[index[key]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(over)


def service_name(params: Params) -> str:
    svc = params.get("service") or {}
    defined = ((params.get("definition") or {}).get("spec") or {}).get("serviceName")
    return svc.get("name") or defined or params["name"]


def _main_container(params: Params) -> dict[str, Any]:
    container = container_opening(params["name"], params)
    ports = [{"name": p["name"], "containerPort": p["container_port"], "protocol": p.get("protocol") or "TCP"}
             for p in params.get("ports") or []]
    if ports:
        container["ports"] = ports
    env = _env_list(params.get("env"))
    if env:
        container["env"] = env
    if params.get("env_from"):
        container["envFrom"] = _env_from(params["env_from"])
    for opt, key in (("resources", "resources"), ("readiness_probe", "readinessProbe"),
                     ("liveness_probe", "livenessProbe"), ("startup_probe", "startupProbe")):
        if params.get(opt):
            container[key] = copy.deepcopy(params[opt])
    mounts = [{"name": t["name"], "mountPath": t["mount_path"]}
              for t in params.get("volume_claim_templates") or [] if t.get("mount_path")]
    mounts += copy.deepcopy(params.get("volume_mounts") or [])
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _claim_template(tmpl: dict[str, Any]) -> Obj:
    spec = {"accessModes": list(tmpl.get("access_modes") or ["ReadWriteOnce"]),
            "resources": {"requests": {"storage": str(tmpl["size"])}}}
    if tmpl.get("storage_class") is not None:
        spec["storageClassName"] = tmpl["storage_class"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": tmpl["name"]}, "spec": spec}


def build_statefulset(params: Params) -> Obj:
    """The StatefulSet manifest: generated from the options, then ``definition`` merged over it."""
    name, namespace = params["name"], params["namespace"]
    definition = copy.deepcopy(params.get("definition") or {})
    def_spec = definition.get("spec") or {}
    selector = copy.deepcopy(def_spec.get("selector")) or {"matchLabels": {SELECTOR_LABEL: name}}
    labels = _string_map("labels", params.get("labels"))
    pod_labels = dict(labels)
    pod_labels.update(selector.get("matchLabels") or {})
    obj_labels = {"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": MANAGED_BY}
    obj_labels.update(labels)
    pod_spec: dict[str, Any] = {"containers": []}
    if params.get("image"):
        pod_spec["containers"].append(_main_container(params))
    pod_spec["containers"] += copy.deepcopy(params.get("sidecars") or [])
    if params.get("init_containers"):
        pod_spec["initContainers"] = copy.deepcopy(params["init_containers"])
    if params.get("volumes"):
        pod_spec["volumes"] = copy.deepcopy(params["volumes"])
    template: dict[str, Any] = {"metadata": {"labels": pod_labels}, "spec": pod_spec}
    if params.get("pod_annotations"):
        template["metadata"]["annotations"] = dict(params["pod_annotations"])
    strategy = params.get("update_strategy") or {}
    update: dict[str, Any] = {"type": strategy.get("type") or "RollingUpdate"}
    if update["type"] == "RollingUpdate" and strategy.get("partition") is not None:
        update["rollingUpdate"] = {"partition": strategy["partition"]}
    spec: dict[str, Any] = {
        "serviceName": service_name(params),
        "replicas": 1 if params.get("replicas") is None else params["replicas"],
        "selector": selector,
        "podManagementPolicy": params.get("pod_management_policy") or "OrderedReady",
        "updateStrategy": update,
        "template": template,
    }
    if params.get("volume_claim_templates"):
        spec["volumeClaimTemplates"] = [_claim_template(t) for t in params["volume_claim_templates"]]
    generated: Obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
                      "metadata": {"name": name, "namespace": namespace, "labels": obj_labels}, "spec": spec}
    if params.get("annotations"):
        generated["metadata"]["annotations"] = dict(params["annotations"])
    definition.setdefault("spec", {}).pop("selector", None)
    defined_pod = ((definition["spec"].get("template") or {}).get("spec") or {})
    options, origin = pod_options(params, name, selector.get("matchLabels") or {})
    if "containers" in options and not params.get("image") and not any(
            isinstance(c, dict) and c.get("name") == name for c in defined_pod.get("containers") or []):
        raise InvalidInput("pre_stop", "applies to the main container %r; set image, or name a container %r in "
                                       "definition" % (name, name))
    check_conflicts(origin, options, defined_pod)
    spec["template"]["spec"] = deep_merge(pod_spec, options)
    sts = deep_merge(generated, definition)
    if params.get("security_context") is not None:
        secure_containers(sts["spec"]["template"]["spec"], security_context(params["security_context"])["container"])
    if params.get("replicas") is not None:
        sts["spec"]["replicas"] = params["replicas"]
    sts["spec"]["selector"] = selector
    _check_built(sts)
    return sts


def _check_built(sts: Obj) -> None:
    """Checks on the merged manifest, so ``definition`` cannot sneak past them."""
    spec = sts["spec"]
    if not (spec.get("selector") or {}).get("matchLabels"):
        raise InvalidInput("definition", "spec.selector.matchLabels is required: the headless Service selects "
                                         "the pods with it")
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    if not pod_spec.get("containers"):
        raise InvalidInput("image", "is required unless definition sets spec.template.spec.containers")
    names, port_names = set(), set()
    for field in ("initContainers", "containers"):
        for idx, container in enumerate(pod_spec.get(field) or []):
            if not isinstance(container, dict) or not container.get("name") or not container.get("image"):
                raise InvalidInput("definition", "spec.template.spec.%s[%d] needs a name and an image"
                                   % (field, idx))
            if container["name"] in names:
                raise InvalidInput("definition", "container name %r is used twice" % container["name"])
            names.add(container["name"])
            for port in (container.get("ports") or []) if field == "containers" else []:
                if port.get("name"):
                    check_port_name("ports (container %s)" % container["name"], port["name"])
                    if port["name"] in port_names:
                        raise InvalidInput("ports", "port name %r is used twice" % port["name"])
                    port_names.add(port["name"])
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key, val in spec["selector"]["matchLabels"].items():
        if labels.get(key) != val:
            raise InvalidInput("definition", "spec.selector.matchLabels %s=%s does not select the pod template "
                                             "labels" % (key, val))
    for idx, tmpl in enumerate(spec.get("volumeClaimTemplates") or []):
        check_dns_label("volume_claim_templates[%d].name" % idx, _merge_key(tmpl))


def service_ports(sts: Obj) -> list[dict[str, Any]]:
    """Named container ports of the StatefulSet, as headless Service ports."""
    ports = []
    for container in sts["spec"]["template"]["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                ports.append({"name": port["name"], "port": port["containerPort"], "targetPort": port["name"],
                              "protocol": port.get("protocol") or "TCP"})
    return ports


def build_service(params: Params, sts: Obj) -> Obj:
    """The headless Service that gives each pod its stable DNS name."""
    svc = params.get("service") or {}
    labels = {"app.kubernetes.io/instance": params["name"], "app.kubernetes.io/managed-by": MANAGED_BY}
    labels.update(_string_map("service.labels", svc.get("labels")))
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": sts["spec"]["serviceName"], "namespace": params["namespace"], "labels": labels},
        "spec": {
            "clusterIP": "None",
            "selector": dict(sts["spec"]["selector"]["matchLabels"]),
            "publishNotReadyAddresses": bool(svc.get("publish_not_ready_addresses")),
        },
    }
    ports = service_ports(sts)
    if ports:
        obj["spec"]["ports"] = ports
    if svc.get("annotations"):
        obj["metadata"]["annotations"] = dict(svc["annotations"])
    return obj


# -- immutable fields --------------------------------------------------------------------
def _normal_claim(tmpl: Obj | None) -> Obj:
    tmpl = copy.deepcopy(tmpl or {})
    for key in ("status", "apiVersion", "kind"):
        tmpl.pop(key, None)
    meta = tmpl.get("metadata") or {}
    for key in ("creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"):
        meta.pop(key, None)
    tmpl["metadata"] = {k: v for k, v in meta.items() if v not in (None, {}, [])}
    spec = tmpl.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    for section in ("requests", "limits"):
        values = (spec.get("resources") or {}).get(section)
        if values:
            spec["resources"][section] = {k: parse_quantity(v) for k, v in values.items()}
    return tmpl


def claim_storage(tmpl: Obj) -> Decimal | None:
    requests = ((tmpl.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return parse_quantity(requests["storage"]) if requests.get("storage") is not None else None


def immutable_changes(live: Obj, desired: Obj) -> list[tuple[str, str]]:
    """``[(field, detail)]`` for every change the API server would refuse on an existing StatefulSet."""
    changes = []
    lspec, dspec = live.get("spec") or {}, desired.get("spec") or {}
    if (lspec.get("serviceName") or "") != (dspec.get("serviceName") or ""):
        changes.append(("serviceName", "%s -> %s" % (lspec.get("serviceName"), dspec.get("serviceName"))))
    if (lspec.get("selector") or {}) != (dspec.get("selector") or {}):
        changes.append(("selector", "%s -> %s" % (lspec.get("selector"), dspec.get("selector"))))
    lpolicy = lspec.get("podManagementPolicy") or "OrderedReady"
    dpolicy = dspec.get("podManagementPolicy") or "OrderedReady"
    if lpolicy != dpolicy:
        changes.append(("podManagementPolicy", "%s -> %s" % (lpolicy, dpolicy)))
    ltmpl = {_merge_key(t): t for t in lspec.get("volumeClaimTemplates") or []}
    dtmpl = {_merge_key(t): t for t in dspec.get("volumeClaimTemplates") or []}
    details = []
    for name in sorted(set(ltmpl) | set(dtmpl)):
        if name not in dtmpl:
            details.append("%s removed" % name)
        elif name not in ltmpl:
            details.append("%s added" % name)
        elif _normal_claim(ltmpl[name]) != _normal_claim(dtmpl[name]):
            old, new = claim_storage(ltmpl[name]), claim_storage(dtmpl[name])
            if old != new:
                details.append("%s: storage %s -> %s" % (name, _storage_text(ltmpl[name]),
                                                         _storage_text(dtmpl[name])))
            else:
                details.append("%s changed" % name)
    if details:
        changes.append(("volumeClaimTemplates", ", ".join(details)))
    return changes


def _storage_text(tmpl: Obj) -> str | None:
    return (((tmpl.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")


def storage_growth(live: Obj, desired: Obj) -> dict[str, tuple[str | None, str | None, Decimal, Decimal]]:
    """``{template: (old, new)}`` for every claim template kept whose storage request changed."""
    ltmpl = {_merge_key(t): t for t in (live.get("spec") or {}).get("volumeClaimTemplates") or []}
    out = {}
    for tmpl in (desired.get("spec") or {}).get("volumeClaimTemplates") or []:
        name = _merge_key(tmpl)
        if name in ltmpl:
            old, new = claim_storage(ltmpl[name]), claim_storage(tmpl)
            if old is not None and new is not None and old != new:
                out[name] = (_storage_text(ltmpl[name]), _storage_text(tmpl), old, new)
    return out
