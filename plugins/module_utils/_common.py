# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error path every module's ``main()`` goes through."""

from __future__ import annotations

__metaclass__ = type

import copy

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError
from ansible_collections.datastore.kubernetes.plugins.module_utils._kube import KUBE_CONNECTION_ARGSPEC

# Detail keys that are for code, not for the person reading the failure.
_PRIVATE_DETAILS = ("last", "job")

WAIT_ARGSPEC = {
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 300},
}


def kube_argspec(**options):
    """Connection options plus a module's own ``options``."""
    spec = copy.deepcopy(KUBE_CONNECTION_ARGSPEC)
    spec.update(options)
    return spec


def run_module(module, work):
    """Call ``work(module)`` and exit with its result, or fail once with a readable message."""
    try:
        result = work(module)
    except DatastoreError as exc:
        kwargs = {k: v for k, v in exc.to_fail_kwargs().items() if k not in _PRIVATE_DETAILS and v is not None}
        module.fail_json(**kwargs)
    module.exit_json(**result)
