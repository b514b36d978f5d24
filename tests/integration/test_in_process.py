"""Modules run inside Ansible's worker process on a local connection, and as modules otherwise.

Each test runs a real ``ansible-playbook`` against the local environment and checks the
effect on the cluster, the result the play registered, and (at ``-vvv``) which way the
module ran.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from conftest import COLLECTIONS_ROOT

BIN = os.path.dirname(sys.executable)
IN_WORKER = "runs in the worker process"
AS_MODULE = "runs as a module"


def _playbook(localenv, tmp_path, tasks, extra_vars=None, args=(), env=None, check=True, play=None):
    """Run ``tasks`` in a play on localhost; returns (returncode, output, registered results)."""
    results = tmp_path / "results.json"
    plays = [{
        "name": "In-process test",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": tasks + [{
            "name": "Dump what was registered",
            "ansible.builtin.copy": {"dest": str(results), "content": "{{ dump | to_json }}", "mode": "0600"},
            "vars": {"dump": "{{ {%s} }}" % ", ".join(
                "'%s': %s | default(None)" % (t["register"], t["register"]) for t in tasks if "register" in t)},
            "check_mode": False,
            "diff": False,
            "delegate_to": "localhost",
        }],
    }]
    plays[0].update(play or {})
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(plays))
    run_env = dict(os.environ)
    run_env.update(localenv)
    run_env.update(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    for name, value in (env or {}).items():
        if value is None:
            run_env.pop(name, None)
        else:
            run_env[name] = value
    # A variable given as None is left out (the interpreter, to let the configuration decide).
    variables = {name: value for name, value in dict({"ansible_python_interpreter": sys.executable},
                                                     **(extra_vars or {})).items() if value is not None}
    inventory = [] if "-i" in args else ["-i", "localhost,"]
    argv = [os.path.join(BIN, "ansible-playbook")] + inventory + ["-e", json.dumps(variables), str(path)] + list(args)
    proc = subprocess.run(argv, env=run_env, cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
                          check=False)
    output = proc.stdout + proc.stderr
    registered = json.loads(results.read_text()) if results.exists() else {}
    if check:
        assert proc.returncode == 0, output[-4000:]
    return proc.returncode, output, registered


def _configmap_task(namespace, data, register, **extra):
    task = {"name": "ConfigMap " + register,
            "datastore.kubernetes.configmap": {"name": "inproc", "namespace": namespace, "data": data},
            "register": register}
    task.update(extra)
    return task


def test_worker_and_module_runs_agree(localenv, namespace, kube, tmp_path):
    """Created in the worker, then a no-op both ways, then changed as a module: same results, real effects."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _rc, out, reg = _playbook(localenv, tmp_path, [
        _configmap_task(namespace, {"a": "1"}, "created"),
        _configmap_task(namespace, {"a": "1"}, "again"),
    ], args=["-vvv"])
    assert out.count("datastore.kubernetes.configmap " + IN_WORKER) == 2, out[-3000:]
    assert AS_MODULE not in out
    assert reg["created"]["changed"] is True and reg["again"]["changed"] is False
    live = core.read_namespaced_config_map("inproc", namespace)
    assert live.data == {"a": "1"}
    version = live.metadata.resource_version

    _rc, out, reg2 = _playbook(localenv, tmp_path, [
        _configmap_task(namespace, {"a": "1"}, "noop"),
        _configmap_task(namespace, {"a": "2"}, "changed"),
    ], extra_vars={"datastore_kubernetes_in_process": False}, args=["-vvv"])
    assert out.count("datastore.kubernetes.configmap " + AS_MODULE + ": datastore_kubernetes_in_process is false") == 2
    assert IN_WORKER not in out
    assert reg2["noop"]["changed"] is False
    assert reg2["changed"]["changed"] is True
    # The module run and the worker run report the same things about the same object.
    assert sorted(reg2["noop"]) == sorted(reg["again"])
    assert reg2["noop"]["content_hash"] == reg["again"]["content_hash"]
    assert reg2["noop"]["name"] == reg["again"]["name"] == "inproc"
    assert core.read_namespaced_config_map("inproc", namespace).data == {"a": "2"}
    assert core.read_namespaced_config_map("inproc", namespace).metadata.resource_version != version


def test_check_and_diff_in_the_worker(localenv, namespace, kube, tmp_path):
    from kubernetes import client

    core = client.CoreV1Api(kube)
    _playbook(localenv, tmp_path, [_configmap_task(namespace, {"a": "1"}, "created")])
    before = core.read_namespaced_config_map("inproc", namespace).metadata.resource_version
    _rc, out, reg = _playbook(localenv, tmp_path, [_configmap_task(namespace, {"a": "changed-value"}, "checked")],
                              args=["--check", "--diff"])
    assert reg["checked"]["changed"] is True
    assert "changed-value" in out  # the diff was shown
    live = core.read_namespaced_config_map("inproc", namespace)
    assert live.data == {"a": "1"} and live.metadata.resource_version == before


def test_task_environment_reaches_the_module(localenv, namespace, kube, tmp_path):
    """``environment:`` on the task is what the module sees, as with a separate process."""
    from kubernetes import client

    env = {"KUBECONFIG": os.path.join(str(tmp_path), "missing-kubeconfig")}
    task = _configmap_task(namespace, {"from": "environment"}, "made",
                           environment={"K8S_AUTH_KUBECONFIG": localenv["KUBECONFIG"]})
    _playbook(localenv, tmp_path, [task], env=env, args=["-vvv"])
    assert client.CoreV1Api(kube).read_namespaced_config_map("inproc", namespace).data == {"from": "environment"}

    # Without it, the same task fails on the missing kubeconfig: the environment really was the task's.
    rc, out, _reg = _playbook(localenv, tmp_path, [_configmap_task(namespace, {"from": "x"}, "fails")],
                              env=env, check=False)
    assert rc != 0 and "missing-kubeconfig" in out


def test_no_log_values_are_masked_in_the_worker(localenv, namespace, tmp_path):
    """An option marked no_log never shows in the output, even when the task fails at -vvvv."""
    token = "inproc-secret-token-0d5c9f1e7a"
    task = {"name": "Bad token", "datastore.kubernetes.info": {
        "name": "anything", "namespace": namespace, "host": localenv["K8S_API"],
        "api_key": token, "validate_certs": False}, "register": "denied", "ignore_errors": True}
    _rc, out, reg = _playbook(localenv, tmp_path, [task], args=["-vvvv"],
                              env={"KUBECONFIG": None, "K8S_AUTH_KUBECONFIG": None})
    assert IN_WORKER in out
    assert reg["denied"]["failed"] is True
    assert "401" in reg["denied"]["msg"] or "nauthorized" in reg["denied"]["msg"]
    assert token not in out
    assert token not in json.dumps(reg)
    # urllib3's warning about the unverified connection stays out of the play's output, as it does
    # for a module process.
    assert "InsecureRequestWarning" not in out


def test_bad_input_fails_in_the_worker_naming_the_field(localenv, namespace, kube, tmp_path):
    from kubernetes import client

    task = _configmap_task(namespace, {"a": "1"}, "bad", ignore_errors=True)
    task["datastore.kubernetes.configmap"]["name"] = "Not_A_Name"
    _rc, out, reg = _playbook(localenv, tmp_path, [task], args=["-vvv"])
    assert IN_WORKER in out
    assert reg["bad"]["failed"] is True and "name" in reg["bad"]["msg"]
    # Nothing but what the cluster itself puts into every namespace.
    names = [cm.metadata.name for cm in client.CoreV1Api(kube).list_namespaced_config_map(namespace).items]
    assert [name for name in names if name != "kube-root-ca.crt"] == []


@pytest.mark.parametrize("variable,expected", [
    ({"ansible_python_interpreter": "/usr/bin/env python3"}, "the interpreter is /usr/bin/env python3"),
    ({"datastore_kubernetes_in_process": "no"}, "datastore_kubernetes_in_process is false"),
])
def test_falls_back_to_a_module_run(localenv, namespace, kube, tmp_path, variable, expected):
    from kubernetes import client

    rc, out, _reg = _playbook(localenv, tmp_path, [_configmap_task(namespace, {"a": "1"}, "made")],
                              extra_vars=variable, args=["-vvv"], check=False)
    assert AS_MODULE + ": " + expected in out, out[-3000:]
    assert IN_WORKER not in out
    if rc == 0:
        assert client.CoreV1Api(kube).read_namespaced_config_map("inproc", namespace).data == {"a": "1"}


def test_bad_switch_value_names_the_variable(localenv, namespace, tmp_path):
    rc, out, _reg = _playbook(localenv, tmp_path, [_configmap_task(namespace, {"a": "1"}, "made")],
                              extra_vars={"datastore_kubernetes_in_process": "sometimes"}, check=False)
    assert rc != 0 and "datastore_kubernetes_in_process: must be a boolean" in out


def test_module_warnings_reach_the_result(localenv, namespace, tmp_path):
    """A warning the module raises is in the registered result, as it is after a module run."""
    def job(command, register, **extra):
        args = {"name": "warned", "namespace": namespace, "image": "busybox", "command": command, "wait": False}
        args.update(extra)
        return {"name": "Job " + register, "datastore.kubernetes.job": args, "register": register}

    _rc, out, reg = _playbook(localenv, tmp_path, [
        job(["true"], "first"),
        job(["false"], "kept", rerun="never"),
    ], args=["-vvv"])
    assert out.count(IN_WORKER) == 2
    assert reg["kept"]["changed"] is False
    assert reg["kept"]["warnings"] == [
        "Job %s/warned exists with a different spec; left alone because rerun=never" % namespace]


def test_module_defaults_of_the_action_group_apply(localenv, namespace, kube, tmp_path):
    """Connection options set once for group/datastore.kubernetes.k8s reach the module in the worker."""
    from kubernetes import client

    play = {"module_defaults": {"group/datastore.kubernetes.k8s": {"kubeconfig": localenv["KUBECONFIG"]}}}
    _rc, out, _reg = _playbook(localenv, tmp_path, [_configmap_task(namespace, {"via": "defaults"}, "made")],
                               play=play, args=["-vvv"], env={"KUBECONFIG": None, "K8S_AUTH_KUBECONFIG": None})
    assert IN_WORKER in out
    assert client.CoreV1Api(kube).read_namespaced_config_map("inproc", namespace).data == {"via": "defaults"}


def _inline_kubeconfig(localenv, tmp_path):
    """The local cluster's kubeconfig with the client certificate and key inline, and the key's bytes."""
    pki = os.path.join(localenv["LOCALENV_STATE"], "pki")

    def b64(name):
        with open(os.path.join(pki, name), "rb") as handle:
            return base64.b64encode(handle.read()).decode("ascii")

    with open(os.path.join(pki, "admin.key"), "rb") as handle:
        key = handle.read()
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "inline",
           "clusters": [{"name": "c", "cluster": {"server": localenv["K8S_API"],
                                                  "certificate-authority-data": b64("ca.crt")}}],
           "users": [{"name": "u", "user": {"client-certificate-data": b64("admin.crt"),
                                            "client-key-data": b64("admin.key")}}],
           "contexts": [{"name": "inline", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "inline.json"
    path.write_text(json.dumps(doc))
    return str(path), key


@pytest.mark.parametrize("in_process", [True, False])
def test_inline_client_key_never_stays_in_tmpdir(localenv, namespace, kube, tmp_path, in_process):
    """A kubeconfig with client-key-data: a task, a loop and a failing task leave no key file in TMPDIR."""
    from kubernetes import client

    kubeconfig, key = _inline_kubeconfig(localenv, tmp_path)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    task = _configmap_task(namespace, {"a": "1"}, "one")
    loop = _configmap_task(namespace, {"item": "{{ item }}"}, "looped", loop=["x", "y", "z"])
    loop["datastore.kubernetes.configmap"]["name"] = "inproc-{{ item }}"
    failing = _configmap_task(namespace + "-missing", {"a": "1"}, "failing", ignore_errors=True)
    _rc, out, reg = _playbook(localenv, tmp_path, [task, loop, failing], args=["-vvv"],
                              extra_vars={"datastore_kubernetes_in_process": in_process},
                              env={"TMPDIR": str(private_tmp), "KUBECONFIG": None, "K8S_AUTH_KUBECONFIG": kubeconfig})
    assert out.count(IN_WORKER if in_process else AS_MODULE) == 5, out[-3000:]
    assert reg["failing"]["failed"] is True
    assert len(reg["looped"]["results"]) == 3 and not any(r.get("failed") for r in reg["looped"]["results"])
    core = client.CoreV1Api(kube)
    assert [core.read_namespaced_config_map("inproc-" + i, namespace).data for i in "xyz"] == [
        {"item": "x"}, {"item": "y"}, {"item": "z"}]
    left = []
    for directory, _dirs, files in os.walk(private_tmp):
        for name in files:
            with open(os.path.join(directory, name), "rb") as handle:
                if name.startswith("datastore-kube-") or key in handle.read():
                    left.append(name)
    assert left == []


def test_delegated_host_decides_the_interpreter(localenv, namespace, kube, tmp_path):
    """The inventory host's interpreter is another Python; the delegated localhost's is ours: the worker runs it."""
    task = _configmap_task(namespace, {"a": "1"}, "made", delegate_to="localhost")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {
        "elsewhere": {"ansible_host": "127.0.0.1", "ansible_connection": "ssh",
                      "ansible_python_interpreter": "/usr/bin/python3"},
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    _rc, out, _reg = _playbook(localenv, tmp_path, [task], args=["-vvv", "-i", str(inventory)],
                               play={"hosts": "elsewhere"}, extra_vars={"ansible_python_interpreter": None})
    assert "datastore.kubernetes.configmap " + IN_WORKER in out, out[-3000:]


def test_interpreter_python_and_discovery(localenv, namespace, tmp_path):
    """interpreter_python from the configuration counts; with discovery, the first task runs as a module."""
    task = _configmap_task(namespace, {"a": "1"}, "made")
    _rc, out, _reg = _playbook(localenv, tmp_path, [task], args=["-vvv"], extra_vars={"ansible_python_interpreter": None},
                               env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    assert "datastore.kubernetes.configmap " + IN_WORKER in out, out[-3000:]

    first = _configmap_task(namespace, {"a": "1"}, "first", ignore_errors=True)
    second = _configmap_task(namespace, {"a": "1"}, "second", ignore_errors=True)
    # Whatever discovery finds on this machine runs the module (or fails to), not the worker; the play's
    # result does not matter here.
    _rc, out, _reg = _playbook(localenv, tmp_path, [first, second], args=["-vvv"],
                               extra_vars={"ansible_python_interpreter": None},
                               env={"ANSIBLE_PYTHON_INTERPRETER": "auto_silent"}, check=False)
    assert AS_MODULE + ": interpreter discovery (auto_silent) has not run for this host" in out, out[-3000:]
    # The discovered interpreter is the system's, not this venv's: the second task is a module process too.
    assert out.count(AS_MODULE) == 2 and IN_WORKER not in out
