# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module of this collection inside the worker process when its target is the controller.

A task that talks to Kubernetes or Vault over the network gains nothing from Ansible's
module transport when the connection is ``local``: building the module payload, a
temporary directory, a second Python interpreter and its imports cost about 0.2 s per
task, more than most of the modules' own work. When the task runs on the controller,
the action plugin below starts the very same module code in the forked worker instead:
the arguments are encoded as Ansible encodes them, ``AnsibleModule`` validates them,
masks ``no_log`` values and formats the result as usual, and the printed result is
parsed by Ansible's own result parser. Everything else falls back to the normal module
transport.

The worker is a fresh fork for every task and host, so the module's changes to
process-wide state (environment, module globals) end with it; they are restored anyway.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys

from ansible.errors import AnsibleActionFail
from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction, get_module_encoder
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.vars.clean import remove_internal_keys

display = Display()

# Task variable that turns in-process execution off (it is on by default).
IN_PROCESS_VAR = "datastore_kubernetes_in_process"

# Our modules declare no serialization metadata, so Ansible uses this profile for them.
_PROFILE = "legacy"

# Library flags: module_utils attribute holding the import error, and the module
# functions that show a module needs that library.
_LIBRARIES = (
    ("_kube", "URLLIB3_IMPORT_ERROR", "check_kubernetes_library"),
    ("_vault", "HVAC_IMPORT_ERROR", "check_hvac_library"),
)
_UTILS = "ansible_collections.datastore.kubernetes.plugins.module_utils."


class InProcessModuleAction(ActionBase):
    """Action plugin for a module of this collection: in the worker when possible, else as usual."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        module_fqcn, python_name = self._module_names()
        reason = self._not_in_process_reason(task_vars)
        pymodule = None
        if reason is None:
            pymodule, reason = _import_module(python_name)
        if reason is not None:
            display.vvv("%s runs as a module: %s" % (module_fqcn, reason))
            result.update(self._execute_module(module_name=module_fqcn, task_vars=task_vars))
            return result
        display.vvv("%s runs in the worker process" % module_fqcn)
        result.update(self._run_in_process(pymodule, module_fqcn, task_vars))
        return result

    def _module_names(self):
        """FQCN and Python module name of the module this action plugin belongs to."""
        action_module = type(self).__module__  # ansible_collections.<ns>.<coll>.plugins.action.<name>
        parts = action_module.split(".")
        namespace, collection, name = parts[1], parts[2], parts[-1]
        python_name = ".".join(parts[:-2] + ["modules", name])
        return "%s.%s.%s" % (namespace, collection, name), python_name

    def _not_in_process_reason(self, task_vars):
        """Why this task must go through the module transport, or None."""
        try:
            wanted = boolean(self._templar.template(task_vars.get(IN_PROCESS_VAR, True)), strict=True)
        except TypeError:
            raise AnsibleActionFail("%s: must be a boolean" % IN_PROCESS_VAR) from None
        if not wanted:
            return "%s is false" % IN_PROCESS_VAR
        if getattr(self._connection, "transport", None) != "local":
            return "the connection is not local"
        if self._play_context.become:
            return "become is set"
        if self._task.async_val:
            return "the task is async"
        if self._task.timeout:
            # The alarm would interrupt the module anywhere, e.g. between issuing credentials and
            # storing them; a module in its own process is left to finish what it started.
            return "the task has a timeout"
        interpreter = task_vars.get("ansible_python_interpreter")
        if interpreter is not None:
            interpreter = self._templar.template(interpreter)
            if not _same_interpreter(interpreter):
                return "ansible_python_interpreter is %s, not the controller's Python" % interpreter
        return None

    def _run_in_process(self, pymodule, module_fqcn, task_vars):
        module_args = dict(self._task.args)
        self._update_module_args(module_fqcn, module_args, task_vars)
        encoder = get_module_encoder(_PROFILE, Direction.CONTROLLER_TO_MODULE)
        encoded = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=encoder).encode("utf-8")
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)

        output, errors = io.StringIO(), io.StringIO()
        rc = 0
        # stderr is kept out of the play's output as a module process's is (Python warnings such as
        # urllib3's about unverified TLS); Ansible shows it only when no result could be parsed.
        with _module_globals(encoded), _environment(environment), contextlib.redirect_stdout(output), \
                contextlib.redirect_stderr(errors):
            try:
                pymodule.main()
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            else:
                raise RuntimeError("%s returned without a result" % module_fqcn)

        data = self._parse_returned_data({"stdout": output.getvalue(), "stderr": errors.getvalue(), "rc": rc},
                                         _PROFILE)
        data.pop("_ansible_suppress_tmpdir_delete", None)
        remove_internal_keys(data)
        return data


def _same_interpreter(interpreter):
    """Whether ``interpreter`` is the Python running the controller.

    The same directory and the same executable: a virtual environment's ``bin/python``
    and ``bin/python3`` are one interpreter, a virtual environment and its base Python
    (the same file behind a symlink) are not.
    """
    if not interpreter or str(interpreter).startswith("auto"):
        return False
    path = os.path.abspath(os.path.expanduser(str(interpreter)))
    ours = os.path.abspath(sys.executable)
    if os.path.dirname(path) != os.path.dirname(ours):
        return False
    try:
        return os.path.samefile(path, ours)
    except OSError:
        return False


def _import_module(python_name):
    """The module's Python module, or the reason it cannot run here."""
    try:
        pymodule = importlib.import_module(python_name)
    except ImportError as exc:
        return None, "cannot import it on the controller (%s)" % exc
    for utils, flag, checker in _LIBRARIES:
        if not hasattr(pymodule, checker):
            continue
        error = getattr(importlib.import_module(_UTILS + utils), flag, None)
        if error is not None:
            return None, "a library it needs is missing on the controller (%s)" % error
    return pymodule, None


@contextlib.contextmanager
def _module_globals(encoded):
    """Arguments and result-collecting globals of ``ansible.module_utils``, restored afterwards.

    ``module_utils`` also behaves as it does in a module's own process: warnings and
    deprecations are collected into the result instead of being displayed at once.
    """
    # pylint: disable=protected-access
    from ansible.module_utils import _internal
    from ansible.module_utils.common import warnings as module_warnings

    saved = (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE, basic._PARSED_MODULE_ARGS)
    was_controller = _internal.is_controller
    _internal.is_controller = False
    saved_warnings = dict(module_warnings._global_warnings)
    saved_deprecations = dict(module_warnings._global_deprecations)
    module_warnings._global_warnings.clear()
    module_warnings._global_deprecations.clear()
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = encoded, _PROFILE
    try:
        yield
    finally:
        _internal.is_controller = was_controller
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE, basic._PARSED_MODULE_ARGS = saved
        module_warnings._global_warnings.clear()
        module_warnings._global_warnings.update(saved_warnings)
        module_warnings._global_deprecations.clear()
        module_warnings._global_deprecations.update(saved_deprecations)


@contextlib.contextmanager
def _environment(values):
    """The task's ``environment:`` applied to this process, as the module's process would get it.

    The working directory, which ``AnsibleModule`` may change, is put back as well.
    """
    saved = {name: os.environ.get(name) for name in values}
    cwd = os.getcwd()
    for name, value in values.items():
        os.environ[str(name)] = str(value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if os.getcwd() != cwd:
            os.chdir(cwd)
