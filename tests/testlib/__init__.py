"""Helpers the test suites share: imported as ``testlib`` (tests/conftest.py puts tests/ on the path).

- ``testlib.in_process``: a module's ``main()`` run in this process by the action plugins' own harness
- ``testlib.fake_kube``: an in-memory stand-in for ``_kube.KubeClient`` (unit tests)
- ``testlib.vault``: independent checkers of Vault and PostgreSQL (hvac as root, psycopg2)
- ``testlib.reliability``: the reliability figures, the secret search, playbook runs
- ``testlib.localenv``: what the local environment gives (a kubeconfig with the client key inline)
- ``testlib.charts``: small Helm charts written for a test

Here too: ``collections_root()`` (the collection on an importable path), ``unique()`` names,
``created_namespace()`` for the length of a block, ``option_defaults()`` of an argument spec.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)


def collections_root():
    """A directory holding ansible_collections/datastore/kubernetes -> this checkout (made on first use).

    The repository root is the collection root; Python and Ansible find the collection only under
    such a path. tests/conftest.py puts this directory on sys.path.
    """
    root = os.path.join(tempfile.gettempdir(), "datastore-kubernetes-collections-%s" % os.getuid(),
                        uuid.uuid5(uuid.NAMESPACE_URL, REPO).hex[:12])
    link = os.path.join(root, "ansible_collections", "datastore", "kubernetes")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link) or os.readlink(link) != REPO:
        tmp = link + ".tmp%d" % os.getpid()
        os.symlink(REPO, tmp)
        os.replace(tmp, link)
    return root


def unique(prefix):
    """A name no other test run uses: ``<prefix>-<8 hex digits>``."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


@contextlib.contextmanager
def created_namespace(kube, name):
    """The namespace ``name``, created for the block and deleted after it (``kube``: an upstream ApiClient)."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def option_defaults(argument_spec):
    """Each option of an argument spec at its default, as AnsibleModule hands over the options not given."""
    return {name: option.get("default") for name, option in argument_spec.items()}
