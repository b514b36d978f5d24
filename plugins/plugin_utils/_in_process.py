# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module of this collection inside the worker process when its target is the controller.

A task that talks to Kubernetes or Vault over the network gains nothing from Ansible's
module transport when the connection is ``local``: building the module payload, a
temporary directory, a second Python interpreter and its imports cost about 0.2 s per
task, more than most of the modules' own work. When the task runs on the controller,
with the controller's own Python, the action plugin below starts the very same module
code in the forked worker instead: the arguments are encoded as Ansible encodes them,
``AnsibleModule`` validates them, masks ``no_log`` values and formats the result as
usual, and the printed result is parsed by Ansible's own result parser.

Anything else, and any ansible-core release whose internals are not the ones
``_core_compat`` knows, goes through the ordinary module transport (the ``normal``
action), and ``-vvv`` says why.

A worker runs every item of a loop, so what a module run changes in the process is put
back after each run: the environment (the task's ``environment:``, and the locale
variables ``AnsibleModule`` may rewrite), the locale, the working directory, the
arguments and warnings of ``module_utils``, and the private files the module wrote.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import locale
import os
import sys

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.utils.display import Display

from ansible_collections.datastore.kubernetes.plugins.plugin_utils import _core_compat

display = Display()

# Task variable that turns in-process execution off (it is on by default).
IN_PROCESS_VAR = "datastore_kubernetes_in_process"

# Library flags: module_utils attribute holding the import error, and the module
# functions that show a module needs that library.
_LIBRARIES = (
    ("_kube", "URLLIB3_IMPORT_ERROR", "check_kubernetes_library"),
    ("_vault", "HVAC_IMPORT_ERROR", "check_hvac_library"),
)
_UTILS = "ansible_collections.datastore.kubernetes.plugins.module_utils."


class InProcessModuleAction(NormalAction):
    """Action plugin for a module of this collection: in the worker when possible, else as usual."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars if task_vars is not None else {}
        module_fqcn, python_name = self._module_names()
        reason = self._not_in_process_reason(task_vars)
        runtime = pymodule = None
        if reason is None:
            runtime, reason = _core_compat.runtime()
        if reason is None:
            pymodule, reason = _import_module(python_name)
        if reason is not None:
            display.vvv("%s runs as a module: %s" % (module_fqcn, reason))
            return super().run(tmp, task_vars)
        display.vvv("%s runs in the worker process" % module_fqcn)
        result = ActionBase.run(self, tmp, task_vars)
        del tmp
        result.update(self._run_in_process(runtime, pymodule, module_fqcn, task_vars))
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
        return self._interpreter_reason(task_vars)

    def _interpreter_reason(self, task_vars):
        """Why the Python ansible-core would run the module with is not this one, or None.

        The same rule as ansible-core's: the delegated host's variables when the task is
        delegated, ``interpreter_python`` from the configuration (``ansible_python_interpreter``,
        ``ANSIBLE_PYTHON_INTERPRETER``, ``ansible.cfg``), and for ``auto*`` the interpreter that
        discovery found for that host. Before discovery has run for it, the module runs as a
        module process, which runs the discovery and records it as ansible-core always does.
        """
        host_vars = task_vars
        delegate_to = getattr(self._task, "delegate_to", None)
        if delegate_to:
            host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(delegate_to)
            if host_vars is None:
                return "the variables of the delegated host %s are not available" % delegate_to
        try:
            configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=host_vars)
            # Templated as it comes: a string method or str() would drop ansible-core 2.19's trust
            # marker from an inventory value such as "{{ ansible_playbook_python }}".
            interpreter = self._templar.template(configured)
        except Exception as exc:  # pylint: disable=broad-except
            return "cannot resolve the Python interpreter (%s)" % exc.__class__.__name__
        interpreter = str(interpreter or "").strip()
        if not interpreter or interpreter.startswith("auto"):
            discovered = (host_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
            if not discovered:
                return "interpreter discovery (%s) has not run for this host" % (interpreter or "auto")
            interpreter = str(discovered)
        if not _same_interpreter(interpreter):
            return "the interpreter is %s, not the controller's Python" % interpreter
        return None

    def _run_in_process(self, runtime, pymodule, module_fqcn, task_vars):
        module_args = dict(self._task.args)
        self._update_module_args(module_fqcn, module_args, task_vars)
        encoded = runtime.encode(module_args)
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)

        output, errors = io.StringIO(), io.StringIO()
        rc = 0
        # stderr is kept out of the play's output as a module process's is (Python warnings such as
        # urllib3's about unverified TLS); Ansible shows it only when no result could be parsed.
        with _process_state(environment), runtime.module_globals(encoded), _private_files(), \
                contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
            try:
                pymodule.main()
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            else:
                raise RuntimeError("%s returned without a result" % module_fqcn)
        return runtime.result(self, output.getvalue(), errors.getvalue(), rc)


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
def _process_state(task_environment):
    """The task's ``environment:`` applied as a module process would get it; the process put back after.

    The whole environment is restored, not only the task's variables: ``AnsibleModule`` rewrites
    ``LANG``, ``LC_ALL`` and ``LC_MESSAGES`` when the locale they name is missing, and the next
    item of a loop runs in this same process. The locale and the working directory, which
    ``AnsibleModule`` may change as well, are put back too.
    """
    saved_environ = dict(os.environ)
    cwd = os.getcwd()
    try:
        saved_locale = locale.setlocale(locale.LC_ALL)
    except locale.Error:
        saved_locale = None
    for name, value in task_environment.items():
        os.environ[str(name)] = str(value)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved_environ):
            del os.environ[name]
        for name, value in saved_environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        if saved_locale is not None:
            try:
                locale.setlocale(locale.LC_ALL, saved_locale)
            except locale.Error:
                pass
        if os.getcwd() != cwd:
            os.chdir(cwd)


@contextlib.contextmanager
def _private_files():
    """No private file of an earlier run is reused, and none written by this run outlives it.

    The module removes them itself at the end of its run; this is the same once more, for a
    module that left early through an exception.
    """
    kubeconfig = importlib.import_module(_UTILS + "_kubeconfig")
    kubeconfig.remove_private_files()
    try:
        yield
    finally:
        kubeconfig.remove_private_files()
