# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How secret values are shown: one placeholder and one way to mask a Secret object.

Kept free of heavy imports: the Vault and Helm modules load it too.
"""

from __future__ import annotations

__metaclass__ = type

from typing import Any

MASK = "<masked>"
MASK_CHANGED = "<masked, changed>"
SECRET_VALUE_FIELDS = ("data", "stringData")


def mask_secret_values(obj: Any) -> Any:
    """A shallow copy of a Secret manifest with every value of data/stringData masked.

    Anything that is not a Secret is returned as it is.
    """
    if not isinstance(obj, dict) or obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for field in SECRET_VALUE_FIELDS:
        if isinstance(out.get(field), dict):
            out[field] = {key: MASK for key in out[field]}
    return out
