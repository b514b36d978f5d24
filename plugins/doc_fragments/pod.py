# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

__metaclass__ = type


class ModuleDocFragment:
    """The pod template options of the statefulset module: its main container, the containers beside it and
    the pod's volumes. Their argument spec is in plugins/modules/statefulset.py with the module's other options."""

    DOCUMENTATION = r"""
options:
  image:
    description: Image of the main container (named like the StatefulSet). Required unless O(definition) sets the containers.
    type: str
  image_pull_policy:
    description: Pull policy of the main container.
    type: str
    choices: [Always, IfNotPresent, Never]
  command:
    description: Entrypoint of the main container.
    type: list
    elements: str
  args:
    description: Arguments of the main container.
    type: list
    elements: str
  ports:
    description:
      - Named ports of the main container. They become ports of the headless Service (named container ports of
        O(sidecars) too) and each gets an SRV name in RV(srv_names).
    type: list
    elements: dict
    suboptions:
      name:
        description: Port name, an IANA service name (at most 15 characters, lower case).
        type: str
        required: true
      container_port:
        description: Port number.
        type: int
        required: true
      protocol:
        description: Protocol of the port.
        type: str
        choices: [TCP, UDP, SCTP]
        default: TCP
  env:
    description:
      - Environment of the main container. Either a mapping of names to values (a mapping value is used as
        C(valueFrom)) or a list of Kubernetes C(EnvVar) mappings.
    type: raw
  env_from:
    description: ConfigMaps and Secrets whose keys become environment variables of the main container.
    type: list
    elements: dict
    suboptions:
      config_map:
        description: Name of a ConfigMap. Set this or O(env_from[].secret).
        type: str
      secret:
        description: Name of a Secret. Set this or O(env_from[].config_map).
        type: str
      prefix:
        description: Prefix added to every variable name.
        type: str
      optional:
        description: Whether the pod starts when the source does not exist.
        type: bool
  volumes:
    description: Extra pod volumes, as Kubernetes C(Volume) mappings (for example a ConfigMap).
    type: list
    elements: dict
  volume_mounts:
    description: Extra volume mounts of the main container, as Kubernetes C(VolumeMount) mappings.
    type: list
    elements: dict
  readiness_probe:
    description: Readiness probe of the main container, as a Kubernetes C(Probe) mapping.
    type: dict
  liveness_probe:
    description: Liveness probe of the main container, as a Kubernetes C(Probe) mapping.
    type: dict
  startup_probe:
    description: Startup probe of the main container, as a Kubernetes C(Probe) mapping.
    type: dict
  resources:
    description: Requests and limits of the main container, as a Kubernetes C(ResourceRequirements) mapping.
    type: dict
  init_containers:
    description: Init containers, as Kubernetes C(Container) mappings.
    type: list
    elements: dict
  sidecars:
    description: More containers next to the main one, as Kubernetes C(Container) mappings.
    type: list
    elements: dict
  pod_annotations:
    description: Annotations of the pod template; changing them rolls the pods.
    type: dict
"""
