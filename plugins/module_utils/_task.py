# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one contract of every module's work.

A module's work is a function ``run(task, client) -> dict``: ``task`` is a ``Task`` (the
validated options, check and diff mode, and the ways back to Ansible: warnings and values
to mask), ``client`` is what the work speaks through (a ``_kube.KubeClient``, a
``_helm.Helm``, a ``_vault.VaultSession``), made by the module's ``connect(task)``; the dict
is the module's result. ``_module.run_module`` wires the three together. Pure: importing
this loads nothing but the standard library.
"""

from __future__ import annotations

__metaclass__ = type

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

Result = Dict[str, Any]


def _discard(*_args: Any, **_kwargs: Any) -> None:
    return None


@dataclass(frozen=True)
class Task:
    """One run of a module, as its work sees it."""

    # The options as AnsibleModule validated them. They are the module's own dict, which Ansible
    # echoes back as the task's invocation.
    params: Dict[str, Any]
    check_mode: bool = False
    diff: bool = False
    # A warning for the task's output.
    warn: Callable[[str], None] = _discard
    # A value (a secret) Ansible must mask in everything it prints, the task's arguments included.
    hide: Callable[[str], None] = _discard
    # ``AnsibleModule.run_command``, for the modules that run a program (helm).
    run_command: Optional[Callable[..., Tuple[int, str, str]]] = None

    @classmethod
    def of(cls, module: Any) -> Task:
        """The task of an ``AnsibleModule``."""
        return cls(params=module.params, check_mode=module.check_mode, diff=module._diff,  # pylint: disable=protected-access
                   warn=module.warn, hide=module.no_log_values.add, run_command=module.run_command)


# ``run(task, client) -> result`` and ``connect(task) -> client``.
Work = Callable[[Task, Any], Result]
Connect = Callable[[Task], Any]
