# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Type names shared by the type hints of module_utils (pure: nothing but ``typing``)."""

from __future__ import annotations

__metaclass__ = type

from typing import Any, Dict

# A Kubernetes object (or any JSON object) as a plain dict, as the API server speaks it.
Obj = Dict[str, Any]
# A module's options after AnsibleModule validated them.
Params = Dict[str, Any]
