# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the cassandra_snapshot module in the worker process when the task's target is the controller."""

from __future__ import annotations

from ansible_collections.datastore.kubernetes.plugins.plugin_utils._in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    """See the module's documentation; this plugin only decides where the module runs."""
