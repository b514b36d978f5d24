"""Provision and grow `local` PersistentVolumes on the real node.

    provisioner.py --kubeconfig FILE --node NAME --directory DIR [--name PROVISIONER]

For each PersistentVolumeClaim whose StorageClass names this provisioner:
- once the scheduler has picked the node (volumeBindingMode WaitForFirstConsumer), make a
  directory under DIR and create a `local` PersistentVolume for it, pinned to the node and
  bound to the claim. `local` volumes honour the pod's fsGroup (the kubelet sets the group
  and the setgid bit), which hostPath volumes do not;
- when the claim asks for more than it has, raise the volume's capacity and the claim's
  status (a directory has no size to change, so nothing else is needed);
- when a volume it made is Released and its reclaim policy is Delete, remove the
  directory and the volume.
Watches claims and volumes; each watch is renewed every few minutes, which re-reads everything.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = ("volume.kubernetes.io/storage-provisioner", "volume.beta.kubernetes.io/storage-provisioner")
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"

log = logging.getLogger("provisioner")


class Provisioner:
    def __init__(self, api: client.ApiClient, name: str, node: str, directory: str):
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.name = name
        self.node = node
        self.directory = directory
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ claims

    def _class(self, claim):
        name = claim.spec.storage_class_name
        if not name:
            return None
        try:
            sc = self.storage.read_storage_class(name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return sc if sc.provisioner == self.name else None

    def claim(self, claim) -> None:
        if claim.metadata.deletion_timestamp:
            return
        sc = self._class(claim)
        if sc is None:
            return
        if claim.spec.volume_name:
            self._grow(claim)
        else:
            self._provision(claim, sc)

    def _provision(self, claim, sc) -> None:
        annotations = claim.metadata.annotations or {}
        if not any(annotations.get(key) == self.name for key in STORAGE_PROVISIONER):
            return  # the volume controller has not handed it to us (yet)
        node = annotations.get(SELECTED_NODE)
        if not node:
            return
        ref = "%s/%s" % (claim.metadata.namespace, claim.metadata.name)
        if node != self.node:
            log.warning("claim %s: node %s was chosen, but volumes exist only on %s", ref, node, self.node)
            return
        pv_name = "pvc-" + claim.metadata.uid
        path = os.path.join(self.directory, pv_name)
        os.makedirs(path, exist_ok=True)
        # Root-owned and closed to others, as a fresh file system would be: a non-root pod can
        # write only through its fsGroup.
        os.chmod(path, 0o750)
        pv = client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=pv_name, annotations={PROVISIONED_BY: self.name}),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": claim.spec.resources.requests["storage"]},
                access_modes=claim.spec.access_modes,
                persistent_volume_reclaim_policy=sc.reclaim_policy or "Delete",
                storage_class_name=sc.metadata.name,
                mount_options=sc.mount_options,
                volume_mode=claim.spec.volume_mode or "Filesystem",
                local=client.V1LocalVolumeSource(path=path),
                claim_ref=client.V1ObjectReference(
                    api_version="v1", kind="PersistentVolumeClaim", namespace=claim.metadata.namespace,
                    name=claim.metadata.name, uid=claim.metadata.uid),
                node_affinity=client.V1VolumeNodeAffinity(required=client.V1NodeSelector(node_selector_terms=[
                    client.V1NodeSelectorTerm(match_expressions=[client.V1NodeSelectorRequirement(
                        key="kubernetes.io/hostname", operator="In", values=[node])])])),
            ))
        try:
            self.core.create_persistent_volume(pv)
            log.info("claim %s: created volume %s at %s", ref, pv_name, path)
        except ApiException as err:
            if err.status != 409:
                raise

    def _grow(self, claim) -> None:
        wanted = claim.spec.resources.requests.get("storage")
        has = (claim.status.capacity or {}).get("storage")
        if not wanted or not has or parse_quantity(wanted) <= parse_quantity(has):
            return
        try:
            pv = self.core.read_persistent_volume(claim.spec.volume_name)
        except ApiException as err:
            if err.status == 404:
                return
            raise
        if (pv.metadata.annotations or {}).get(PROVISIONED_BY) != self.name:
            return
        ref = "%s/%s" % (claim.metadata.namespace, claim.metadata.name)
        if parse_quantity(pv.spec.capacity["storage"]) < parse_quantity(wanted):
            self.core.patch_persistent_volume(pv.metadata.name, {"spec": {"capacity": {"storage": wanted}}})
        self.core.patch_namespaced_persistent_volume_claim_status(
            claim.metadata.name, claim.metadata.namespace,
            {"status": {"capacity": {"storage": wanted}, "allocatedResources": {"storage": wanted},
                        "allocatedResourceStatuses": None, "conditions": None}})
        log.info("claim %s: grown from %s to %s", ref, has, wanted)

    # ------------------------------------------------------------------ volumes

    def volume(self, pv) -> None:
        if (pv.metadata.annotations or {}).get(PROVISIONED_BY) != self.name:
            return
        if pv.status is None or pv.status.phase != "Released":
            return
        if pv.spec.persistent_volume_reclaim_policy != "Delete":
            return
        path = pv.spec.local.path if pv.spec.local else ""
        # Only ever a directory this provisioner made: DIR/<volume name>.
        if path == os.path.join(self.directory, pv.metadata.name):
            shutil.rmtree(path, ignore_errors=True)
        try:
            self.core.delete_persistent_volume(pv.metadata.name)
            log.info("deleted released volume %s", pv.metadata.name)
        except ApiException as err:
            if err.status != 404:
                raise

    # ------------------------------------------------------------------ loops

    def _handle(self, handler, obj) -> None:
        with self.lock:
            try:
                handler(obj)
            except ApiException as err:
                log.warning("%s %s: %s %s", obj.kind or "object", obj.metadata.name, err.status, err.reason)

    def run_watch(self, list_func, handler) -> None:
        while True:
            try:
                listed = list_func()
                for item in listed.items:
                    self._handle(handler, item)
                stream = watch.Watch().stream(list_func, resource_version=listed.metadata.resource_version,
                                              timeout_seconds=240)
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._handle(handler, event["object"])
            except Exception as err:  # a dropped connection or an expired resourceVersion: list again
                log.warning("watch restarted: %s", err)
                time.sleep(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True, help="the node the volumes live on")
    parser.add_argument("--directory", required=True, help="where the volume directories are made")
    parser.add_argument("--name", default="datastore.kubernetes/local", help="the provisioner name StorageClasses use")
    args = parser.parse_args(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.makedirs(args.directory, exist_ok=True)
    prov = Provisioner(config.new_client_from_config(config_file=args.kubeconfig), args.name, args.node,
                       os.path.realpath(args.directory))
    claims = threading.Thread(target=prov.run_watch, daemon=True,
                              args=(prov.core.list_persistent_volume_claim_for_all_namespaces, prov.claim))
    volumes = threading.Thread(target=prov.run_watch, daemon=True,
                               args=(prov.core.list_persistent_volume, prov.volume))
    claims.start()
    volumes.start()
    log.info("provisioning %s volumes for node %s in %s", args.name, args.node, args.directory)
    while claims.is_alive() and volumes.is_alive():
        time.sleep(5)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
