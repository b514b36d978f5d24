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
  termination_grace_period:
    description:
      - Seconds a pod has to stop after it is told to (C(terminationGracePeriodSeconds)), the O(pre_stop) hook
        included. The cluster's default (30) when unset.
    type: int
  pre_stop:
    description:
      - The main container's C(preStop) hook, run before the container is sent SIGTERM. Set one of
        O(pre_stop.command) and O(pre_stop.sleep).
    type: dict
    suboptions:
      command:
        description: A program and its arguments run in the container (an C(exec) action; no shell unless named).
        type: list
        elements: str
      sleep:
        description:
          - Seconds to wait (a C(sleep) action, which needs no program in the image), so clients and Service
            endpoints let go of the pod first. Must be shorter than O(termination_grace_period).
        type: int
  anti_affinity:
    description:
      - Keeps the StatefulSet's own pods apart, one per topology domain (O(anti_affinity_topology_key)).
      - V(preferred) asks the scheduler to spread them when it can; V(required) leaves a pod Pending rather than
        put it next to another; V(none) (or unset) adds no rule.
    type: str
    choices: [none, preferred, required]
  anti_affinity_topology_key:
    description: The node label whose values are the domains O(anti_affinity) spreads over.
    type: str
    default: kubernetes.io/hostname
  security_context:
    description:
      - Runs the pod with the collection's restricted security context, defined in one place for every
        datastore. The pod runs as a non-root user with seccomp C(RuntimeDefault) and C(fsGroupChangePolicy)
        V(OnRootMismatch); every container and init container that has no C(securityContext) of its own runs
        without privilege escalation, with all capabilities dropped and a read-only root file system.
      - Unset adds no security context (the pod runs as the image says).
      - Meets the Kubernetes C(restricted) Pod Security Standard.
    type: dict
    suboptions:
      run_as_user:
        description:
          - UID of the pod's processes. Unset keeps the image's user (which must then be non-root) or the one the
            platform assigns.
          - V(0) runs as root, for reading root-owned files on the node; C(runAsNonRoot) is then dropped, every
            capability still is.
        type: int
      run_as_group:
        description: Primary GID of the pod's processes. Defaults to O(security_context.fs_group) when O(security_context.run_as_user) is set.
        type: int
      fs_group:
        description: Group that owns the pod's volumes (C(fsGroup)), also a supplementary group of its processes.
        type: int
      read_only_root_filesystem:
        description: Whether the containers' root file systems are read-only; write to volumes instead.
        type: bool
        default: true
  node_selector:
    description: Node labels a node must have to run the pods (C(nodeSelector)). Values must be strings.
    type: dict
  tolerations:
    description: Taints the pods tolerate, as Kubernetes C(Toleration) mappings.
    type: list
    elements: dict
  enable_service_links:
    description:
      - Whether the pods get environment variables for every Service of the namespace (C(enableServiceLinks)).
        The cluster's default (V(true)) when unset.
    type: bool
  automount_service_account_token:
    description:
      - Whether the service account token is mounted into the pods. The cluster's default when unset; set
        V(false) for a datastore that never calls the Kubernetes API.
    type: bool
notes:
  - O(definition) may set the fields the pod-level options set (from O(termination_grace_period) on) only to the
    same values; a different value fails before anything is written, naming the option and the field.
"""
