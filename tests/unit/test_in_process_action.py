"""The action plugins' decision of where a module runs, and the state they restore afterwards.

These run on every ansible-core line of ``make compat``: nothing here may assume one release's internals.
"""

from __future__ import annotations

import ast
import locale
import os
import sys
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail
from ansible.module_utils import basic
from ansible.module_utils.common import warnings as module_warnings

from ansible_collections.datastore.kubernetes.plugins.action.configmap import ActionModule as ConfigMapAction
from ansible_collections.datastore.kubernetes.plugins.action.vault_db_secret import ActionModule as SecretAction
from ansible_collections.datastore.kubernetes.plugins.module_utils import _kube, _kubeconfig, _vault
from ansible_collections.datastore.kubernetes.plugins.plugin_utils import _core_compat, _in_process

PLUGIN_UTILS = os.path.dirname(os.path.abspath(_in_process.__file__))


class _Templar:
    @staticmethod
    def template(value):
        return value


def _action(cls=ConfigMapAction, transport="local", become=False, async_val=0, timeout=0, delegate_to=None):
    action = cls.__new__(cls)  # the decision needs no task executor around it
    action._templar = _Templar()
    action._connection = SimpleNamespace(transport=transport)
    action._play_context = SimpleNamespace(become=become)
    action._task = SimpleNamespace(async_val=async_val, timeout=timeout, delegate_to=delegate_to)
    return action


def test_module_names_follow_the_action_plugin():
    assert _action()._module_names() == (
        "datastore.kubernetes.configmap", "ansible_collections.datastore.kubernetes.plugins.modules.configmap")
    assert _action(SecretAction)._module_names()[0] == "datastore.kubernetes.vault_db_secret"


OURS = {"ansible_python_interpreter": sys.executable}


@pytest.mark.parametrize("kwargs,task_vars,expected", [
    ({}, OURS, None),
    ({}, dict(OURS, datastore_kubernetes_in_process="yes"), None),
    ({"transport": "ssh"}, OURS, "the connection is not local"),
    ({"become": True}, OURS, "become is set"),
    ({"async_val": 30}, OURS, "the task is async"),
    ({"timeout": 60}, OURS, "the task has a timeout"),
    ({}, dict(OURS, datastore_kubernetes_in_process=False), "datastore_kubernetes_in_process is false"),
    ({}, {"ansible_python_interpreter": "/usr/bin/python3"}, "the interpreter is /usr/bin/python3"),
    # ansible-core's default is discovery: until it has run for the host, the module process runs it.
    ({}, {}, "interpreter discovery (auto) has not run"),
    ({}, {"ansible_python_interpreter": "auto_silent"}, "interpreter discovery (auto_silent) has not run"),
    ({}, {"ansible_python_interpreter": "auto_silent",
          "ansible_facts": {"discovered_interpreter_python": sys.executable}}, None),
    ({}, {"ansible_python_interpreter": "auto",
          "ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3"}}, "the interpreter is /usr/bin/python3"),
    # Delegated: the delegated host's interpreter decides, not the inventory host's.
    ({"delegate_to": "localhost"}, {"ansible_python_interpreter": "/usr/bin/python3",
                                    "ansible_delegated_vars": {"localhost": OURS}}, None),
    ({"delegate_to": "localhost"}, {"ansible_python_interpreter": sys.executable,
                                    "ansible_delegated_vars": {"localhost": {"ansible_python_interpreter": "/opt/py"}}},
     "the interpreter is /opt/py"),
    ({"delegate_to": "localhost"}, OURS, "the variables of the delegated host localhost are not available"),
])
def test_where_the_module_runs(kwargs, task_vars, expected, monkeypatch):
    monkeypatch.delenv("ANSIBLE_PYTHON_INTERPRETER", raising=False)
    reason = _action(**kwargs)._not_in_process_reason(task_vars)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(expected), reason


def test_interpreter_python_from_the_configuration(monkeypatch):
    """``interpreter_python`` (here from the environment) is read as ansible-core reads it."""
    monkeypatch.setenv("ANSIBLE_PYTHON_INTERPRETER", sys.executable)
    assert _action()._not_in_process_reason({}) is None
    monkeypatch.setenv("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
    assert _action()._not_in_process_reason({}).startswith("the interpreter is /usr/bin/python3")


def test_switch_must_be_a_boolean():
    with pytest.raises(AnsibleActionFail, match="datastore_kubernetes_in_process: must be a boolean"):
        _action()._not_in_process_reason({"datastore_kubernetes_in_process": "sometimes"})


def test_a_symlink_elsewhere_is_another_interpreter(tmp_path):
    """A virtual environment's python is a symlink to its base: same file, different interpreter."""
    link = tmp_path / "python3"
    link.symlink_to(sys.executable)
    assert _in_process._same_interpreter(sys.executable)
    assert not _in_process._same_interpreter(str(link))
    assert not _in_process._same_interpreter(os.path.join(os.path.dirname(sys.executable), "no-such-python"))
    assert not _in_process._same_interpreter("")


# -- ansible-core's internals, per release -----------------------------------------------------

def test_the_running_release_has_a_worker_runtime():
    """Fails on a release line not yet in TESTED_LINES: adding it is the decision these tests make."""
    runtime, reason = _core_compat.runtime()
    assert reason is None and runtime is not None
    assert _core_compat.core_version() in _core_compat.TESTED_LINES


def test_an_untested_release_uses_module_processes(monkeypatch):
    monkeypatch.setattr(_core_compat, "core_version", lambda: (2, 99))
    with pytest.raises(_core_compat.Unsupported, match="ansible-core 2.99 is not one of the releases"):
        _core_compat.detect()


@pytest.mark.parametrize("missing", [
    ("ansible.module_utils.common.json", "get_module_encoder"),
    ("ansible.module_utils.common.json", "AnsibleJSONEncoder"),
    ("ansible.vars.clean", "remove_internal_keys"),
    ("ansible._internal._task", "UnifiedTaskResult"),
])
def test_a_renamed_internal_is_a_reason_not_a_crash(monkeypatch, missing):
    """Whichever of the names this release uses goes missing, detection says so instead of raising."""
    real = _core_compat._attr

    def without(module_name, name):
        if (module_name, name) == missing:
            raise _core_compat.Unsupported("%s has no %s" % missing)
        return real(module_name, name)

    monkeypatch.setattr(_core_compat, "_attr", without)
    monkeypatch.setattr(_core_compat, "_DETECTED", [])
    try:
        _core_compat.detect()
    except _core_compat.Unsupported as exc:
        assert str(exc) == "%s has no %s" % missing
    runtime, reason = _core_compat.runtime()
    assert (runtime is None) == (reason is not None)


def test_an_unexpected_error_in_detection_is_a_reason(monkeypatch):
    def broken():
        raise KeyError("surprise")

    monkeypatch.setattr(_core_compat, "detect", broken)
    monkeypatch.setattr(_core_compat, "_DETECTED", [])
    runtime, reason = _core_compat.runtime()
    assert runtime is None and "KeyError" in reason


STABLE_IMPORTS = {"ansible", "ansible.errors", "ansible.module_utils.parsing.convert_bool", "ansible.plugins.action",
                  "ansible.plugins.action.normal", "ansible.utils.display"}


@pytest.mark.parametrize("name", ["_in_process.py", "_core_compat.py"])
def test_plugin_utils_import_only_stable_names_at_the_top(name):
    """Loading an action plugin must never fail on a renamed internal: those are looked up in detect()."""
    with open(os.path.join(PLUGIN_UTILS, name)) as handle:
        tree = ast.parse(handle.read())
    imported = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    ansible_names = {m for m in imported if m and m.startswith("ansible") and not m.startswith("ansible_collections")}
    assert ansible_names <= STABLE_IMPORTS


def test_missing_library_sends_the_module_out(monkeypatch):
    monkeypatch.setattr(_kube, "URLLIB3_IMPORT_ERROR", ImportError("no urllib3"))
    module, reason = _in_process._import_module("ansible_collections.datastore.kubernetes.plugins.modules.configmap")
    assert module is None and "no urllib3" in reason

    # hvac matters only to the modules that check for it.
    monkeypatch.setattr(_kube, "URLLIB3_IMPORT_ERROR", None)
    monkeypatch.setattr(_vault, "HVAC_IMPORT_ERROR", ImportError("no hvac"))
    module, reason = _in_process._import_module("ansible_collections.datastore.kubernetes.plugins.modules.configmap")
    assert reason is None and module.main
    module, reason = _in_process._import_module(
        "ansible_collections.datastore.kubernetes.plugins.modules.vault_db_secret")
    assert module is None and "no hvac" in reason


def test_unknown_module_is_a_reason_not_a_crash():
    module, reason = _in_process._import_module("ansible_collections.datastore.kubernetes.plugins.modules.nope")
    assert module is None and reason.startswith("cannot import it on the controller")


def test_process_state_is_restored(monkeypatch, tmp_path):
    """The task's environment applies during the run; afterwards the process is as it was (the next loop item)."""
    monkeypatch.setenv("DATASTORE_TEST_KEPT", "before")
    monkeypatch.delenv("DATASTORE_TEST_NEW", raising=False)
    monkeypatch.setenv("LC_ALL", "as-before")
    cwd, saved_locale = os.getcwd(), locale.setlocale(locale.LC_ALL)
    with _in_process._process_state({"DATASTORE_TEST_KEPT": "during", "DATASTORE_TEST_NEW": 5}):
        assert os.environ["DATASTORE_TEST_KEPT"] == "during"
        assert os.environ["DATASTORE_TEST_NEW"] == "5"
        # What AnsibleModule does when the locale is missing, and a module that changes directory.
        os.environ["LC_ALL"] = os.environ["LANG"] = os.environ["LC_MESSAGES"] = "C.UTF-8"
        os.environ["DATASTORE_TEST_BY_MODULE"] = "x"
        locale.setlocale(locale.LC_ALL, "C")
        os.chdir(tmp_path)
    assert os.environ["DATASTORE_TEST_KEPT"] == "before"
    assert "DATASTORE_TEST_NEW" not in os.environ and "DATASTORE_TEST_BY_MODULE" not in os.environ
    assert os.environ["LC_ALL"] == "as-before"
    assert locale.setlocale(locale.LC_ALL) == saved_locale
    assert os.getcwd() == cwd


def test_private_files_do_not_outlive_a_run():
    """A file of an earlier run is not handed out again, and the run's own are removed even on an exception."""
    stale = _kubeconfig.private_file(b"stale-key")
    with pytest.raises(RuntimeError):
        with _in_process._private_files():
            assert not os.path.exists(stale)
            fresh = _kubeconfig.private_file(b"stale-key")
            assert os.path.exists(fresh)
            raise RuntimeError("the module crashed")
    assert not os.path.exists(fresh)
    assert _kubeconfig._WRITTEN == {}


def test_module_globals_are_restored():
    """Inside, module_utils has the run's arguments and collects warnings afresh; outside, all is as before."""
    runtime, reason = _core_compat.runtime()
    assert reason is None
    before = tuple(getattr(basic, name) for name in runtime.basic_names)
    module_warnings.warn("from before")
    earlier = len(module_warnings._global_warnings)
    with runtime.module_globals(b'{"ANSIBLE_MODULE_ARGS": {}}'):
        assert basic._ANSIBLE_ARGS == b'{"ANSIBLE_MODULE_ARGS": {}}'
        assert len(module_warnings._global_warnings) == 0
        module_warnings.warn("collected for the result")
        assert len(module_warnings._global_warnings) == 1
    assert tuple(getattr(basic, name) for name in runtime.basic_names) == before
    assert len(module_warnings._global_warnings) == earlier
    module_warnings._global_warnings.clear()


def test_arguments_are_encoded_for_ansible_module():
    runtime, _reason = _core_compat.runtime()
    encoded = runtime.encode({"name": "x", "data": {"a": "1"}})
    assert isinstance(encoded, bytes)
    with runtime.module_globals(encoded):
        assert basic._load_params() == {"name": "x", "data": {"a": "1"}}
