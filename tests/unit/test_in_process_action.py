"""The action plugins' decision of where a module runs, and the state they restore afterwards."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest
from ansible.errors import AnsibleActionFail
from ansible.module_utils import _internal, basic
from ansible.module_utils.common import warnings as module_warnings

from ansible_collections.datastore.kubernetes.plugins.action.configmap import ActionModule as ConfigMapAction
from ansible_collections.datastore.kubernetes.plugins.action.vault_db_secret import ActionModule as SecretAction
from ansible_collections.datastore.kubernetes.plugins.module_utils import _kube, _vault
from ansible_collections.datastore.kubernetes.plugins.plugin_utils import _in_process


class _Templar:
    @staticmethod
    def template(value):
        return value


def _action(cls=ConfigMapAction, transport="local", become=False, async_val=0, timeout=0):
    action = cls.__new__(cls)  # the decision needs no task executor around it
    action._templar = _Templar()
    action._connection = SimpleNamespace(transport=transport)
    action._play_context = SimpleNamespace(become=become)
    action._task = SimpleNamespace(async_val=async_val, timeout=timeout)
    return action


def test_module_names_follow_the_action_plugin():
    assert _action()._module_names() == (
        "datastore.kubernetes.configmap", "ansible_collections.datastore.kubernetes.plugins.modules.configmap")
    assert _action(SecretAction)._module_names()[0] == "datastore.kubernetes.vault_db_secret"


@pytest.mark.parametrize("kwargs,task_vars,expected", [
    ({}, {}, None),
    ({}, {"ansible_python_interpreter": sys.executable}, None),
    ({}, {"datastore_kubernetes_in_process": "yes"}, None),
    ({"transport": "ssh"}, {}, "the connection is not local"),
    ({"become": True}, {}, "become is set"),
    ({"async_val": 30}, {}, "the task is async"),
    ({"timeout": 60}, {}, "the task has a timeout"),
    ({}, {"datastore_kubernetes_in_process": False}, "datastore_kubernetes_in_process is false"),
    ({}, {"ansible_python_interpreter": "/usr/bin/python3"}, "ansible_python_interpreter is /usr/bin/python3"),
    ({}, {"ansible_python_interpreter": "auto_silent"}, "ansible_python_interpreter is auto_silent"),
])
def test_where_the_module_runs(kwargs, task_vars, expected):
    reason = _action(**kwargs)._not_in_process_reason(task_vars)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(expected)


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


def test_environment_is_applied_and_restored(monkeypatch):
    monkeypatch.setenv("DATASTORE_TEST_KEPT", "before")
    monkeypatch.delenv("DATASTORE_TEST_NEW", raising=False)
    with _in_process._environment({"DATASTORE_TEST_KEPT": "during", "DATASTORE_TEST_NEW": 5}):
        assert os.environ["DATASTORE_TEST_KEPT"] == "during"
        assert os.environ["DATASTORE_TEST_NEW"] == "5"
    assert os.environ["DATASTORE_TEST_KEPT"] == "before"
    assert "DATASTORE_TEST_NEW" not in os.environ


def test_module_globals_are_restored(monkeypatch):
    """Inside, module_utils collects warnings as in a module's process; outside, all is as before."""
    monkeypatch.setattr(_internal, "is_controller", True)
    before = (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE)
    with _in_process._module_globals(b'{"ANSIBLE_MODULE_ARGS": {}}'):
        assert basic._ANSIBLE_ARGS == b'{"ANSIBLE_MODULE_ARGS": {}}'
        assert basic._ANSIBLE_PROFILE == "legacy"
        assert _internal.is_controller is False
        module_warnings.warn("collected for the result")
        assert [w.event.msg for w in module_warnings.get_warnings()] == ["collected for the result"]
    assert (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE) == before
    assert _internal.is_controller is True
    assert not module_warnings.get_warnings()
