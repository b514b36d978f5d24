# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's restricted security context for roles that write their own pod manifests.

The documentation is in pod_security_context.yml beside this file. The context itself is defined once,
in module_utils/_pod_spec.py, where the statefulset module's security_context option takes it from too.
"""

from __future__ import annotations

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._pod_spec import security_context


def pod_security_context(options, part="pod"):
    """``options`` (the statefulset module's security_context keys) as a pod or container security context."""
    if part not in ("pod", "container"):
        raise AnsibleFilterError("pod_security_context: part must be pod or container, got %r" % (part,))
    if options is not None and not isinstance(options, dict):
        raise AnsibleFilterError("pod_security_context: expects a mapping of security_context options")
    try:
        return security_context(options)[part]
    except InvalidInput as exc:
        raise AnsibleFilterError("pod_security_context: %s" % exc.msg)


class FilterModule:
    """The collection's filters."""

    def filters(self):
        return {"pod_security_context": pod_security_context}
