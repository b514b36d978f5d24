# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error path every module's ``main()`` goes through."""

from __future__ import annotations

__metaclass__ = type

import copy
import decimal
import json

from ansible.module_utils import basic

from ansible_collections.datastore.kubernetes.plugins.module_utils import _kubeconfig
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
    """Call ``work(module)`` and exit with its result, or fail once with a readable message.

    The private files the run wrote (a kubeconfig's inline client key) are removed however it
    ends: ``exit_json`` and ``fail_json`` leave through ``SystemExit``, which passes the
    ``finally``, in a module process and in Ansible's worker alike.
    """
    try:
        try:
            result = work(module)
        except DatastoreError as exc:
            kwargs = {k: v for k, v in exc.to_fail_kwargs().items() if k not in _PRIVATE_DETAILS and v is not None}
            module.fail_json(**kwargs)
        module.exit_json(**result)
    finally:
        _kubeconfig.remove_private_files()


def _non_finite_options(argument_spec):
    """Top-level int options whose raw value is an infinite or NaN number."""
    try:
        raw = json.loads(basic._ANSIBLE_ARGS or b"{}").get("ANSIBLE_MODULE_ARGS", {})  # pylint: disable=protected-access
    except (TypeError, ValueError):
        return []
    fields = []
    for name, spec in argument_spec.items():
        value = raw.get(name)
        if spec.get("type") == "int" and isinstance(value, str):
            try:
                number = decimal.Decimal(value.strip())
            except decimal.InvalidOperation:
                continue
            if not number.is_finite():
                fields.append(name)
    return fields


def new_module(argument_spec, **kwargs):
    """``AnsibleModule(...)``, failing cleanly where ansible-core's own checks crash.

    ansible-core's integer check turns "inf" into ``OverflowError`` instead of a type
    error; the task would end with a traceback instead of a message naming the option.
    """
    try:
        return basic.AnsibleModule(argument_spec=argument_spec, **kwargs)
    except OverflowError:
        fields = _non_finite_options(argument_spec)
    msg = "%s: must be a finite whole number" % ", ".join(fields or ["an integer option"])
    # Build the module again with those options unchecked, only to fail the usual way.
    lenient = copy.deepcopy(argument_spec)
    for name in fields:
        lenient[name]["type"] = "raw"
    module = basic.AnsibleModule(argument_spec=lenient, **kwargs)
    module.fail_json(msg=msg)
    return None  # not reached: fail_json exits
