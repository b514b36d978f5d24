"""The configmap module against the local cluster: what the API server holds after each step."""

from __future__ import annotations

import base64

BINARY = bytes(range(256)) * 4


def get_cm(kubectl, namespace, name):
    proc = kubectl("get", "configmap", name, "-n", namespace, "-o", "json", check=False)
    return proc if isinstance(proc, dict) else None


def list_generations(kubectl, namespace, base):
    listing = kubectl("get", "configmap", "-n", namespace, "-l", "datastore.kubernetes/configmap=" + base,
                      "-o", "json")
    return sorted(item["metadata"]["name"] for item in listing["items"])


def sources(tmp_path):
    (tmp_path / "app.conf").write_text("listen_address: 0.0.0.0\n")
    (tmp_path / "truststore.jks").write_bytes(BINARY)
    (tmp_path / "cassandra.env").write_text("# cluster settings\nCLUSTER_NAME=prod\n\n  NUM_TOKENS=16\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "01-schema.cql").write_text("CREATE KEYSPACE app;\n")
    (scripts / "02-load.sh").write_text("#!/bin/sh\necho load\n")
    (scripts / "nested").mkdir()
    (scripts / "nested" / "skipped.txt").write_text("not included")
    return {
        "from_literal": {"MODE": "primary", "REPLICAS": 3},
        "from_file": [str(tmp_path / "app.conf"), {"key": "truststore", "path": str(tmp_path / "truststore.jks")}],
        "from_env_file": [str(tmp_path / "cassandra.env")],
        "from_dir": [str(scripts)],
        "data": {"rendered.yaml": "seeds: db-0.db\n"},
    }


def test_lifecycle_from_every_source(run_module, kubectl, namespace, tmp_path):
    params = dict(sources(tmp_path), name="cassandra-config", namespace=namespace, labels={"app": "cassandra"})

    created = run_module("configmap", params)
    assert not created.get("failed"), created
    assert created["changed"] and created["created"] and created["name"] == "cassandra-config"
    live = get_cm(kubectl, namespace, "cassandra-config")
    assert live["data"] == {
        "MODE": "primary", "REPLICAS": "3", "app.conf": "listen_address: 0.0.0.0\n", "CLUSTER_NAME": "prod",
        "NUM_TOKENS": "16", "01-schema.cql": "CREATE KEYSPACE app;\n", "02-load.sh": "#!/bin/sh\necho load\n",
        "rendered.yaml": "seeds: db-0.db\n"}
    assert base64.b64decode(live["binaryData"]["truststore"]) == BINARY
    assert live["metadata"]["labels"] == {"app": "cassandra"}
    rv = live["metadata"]["resourceVersion"]

    again = run_module("configmap", params)
    assert not again["changed"], again
    assert get_cm(kubectl, namespace, "cassandra-config")["metadata"]["resourceVersion"] == rv

    changed_params = dict(params, from_literal={"MODE": "replica", "REPLICAS": 3})
    preview = run_module("configmap", changed_params, check=True, diff=True)
    assert preview["changed"] and preview["diff"]["after"]["data"]["MODE"] == "replica"
    assert preview["diff"]["before"]["data"]["MODE"] == "primary"
    live = get_cm(kubectl, namespace, "cassandra-config")
    assert live["metadata"]["resourceVersion"] == rv and live["data"]["MODE"] == "primary"

    changed = run_module("configmap", changed_params, diff=True)
    assert changed["changed"] and not changed["created"]
    live = get_cm(kubectl, namespace, "cassandra-config")
    assert live["data"]["MODE"] == "replica" and live["metadata"]["resourceVersion"] != rv

    preview = run_module("configmap", {"name": "cassandra-config", "namespace": namespace, "state": "absent"},
                         check=True)
    assert preview["changed"] and get_cm(kubectl, namespace, "cassandra-config") is not None
    deleted = run_module("configmap", {"name": "cassandra-config", "namespace": namespace, "state": "absent"})
    assert deleted["changed"] and deleted["deleted"] == ["cassandra-config"]
    assert get_cm(kubectl, namespace, "cassandra-config") is None
    assert not run_module("configmap", {"name": "cassandra-config", "namespace": namespace, "state": "absent"})[
        "changed"]


def test_hash_suffix_generations_and_pruning(run_module, kubectl, namespace):
    def apply(value, check=False, keep=2):
        return run_module("configmap", {"name": "scripts", "namespace": namespace, "hash_suffix": True,
                                        "keep_generations": keep, "from_literal": {"version": value}}, check=check)

    names = []
    for value in ("1", "2", "3", "4"):
        out = apply(value)
        assert not out.get("failed"), out
        assert out["name"] == "scripts-" + out["content_hash"] and len(out["content_hash"]) == 10
        names.append(out["name"])
        assert get_cm(kubectl, namespace, out["name"])["data"] == {"version": value}
    assert len(set(names)) == 4
    # keep_generations=2: the current one and the one before it.
    assert list_generations(kubectl, namespace, "scripts") == sorted(names[2:])

    again = apply("4")
    assert not again["changed"] and again["name"] == names[3] and again["pruned"] == []

    preview = apply("5", check=True, keep=1)
    assert preview["changed"] and sorted(preview["pruned"]) == sorted(names[2:])
    assert list_generations(kubectl, namespace, "scripts") == sorted(names[2:])

    # Going back to an older content makes that generation current again; the current one is never pruned.
    back = apply("3", keep=1)
    assert back["name"] == names[2] and back["pruned"] == [names[3]]
    assert list_generations(kubectl, namespace, "scripts") == [names[2]]

    gone = run_module("configmap", {"name": "scripts", "namespace": namespace, "hash_suffix": True,
                                    "state": "absent"})
    assert gone["deleted"] == [names[2]]
    assert list_generations(kubectl, namespace, "scripts") == []


def test_hash_annotation(run_module, kubectl, namespace):
    out = run_module("configmap", {"name": "exporter", "namespace": namespace, "hash_annotation": True,
                                   "from_literal": {"interval": "30s"}})
    live = get_cm(kubectl, namespace, "exporter")
    assert live["metadata"]["annotations"]["datastore.kubernetes/content-hash"] == out["content_hash"]
    changed = run_module("configmap", {"name": "exporter", "namespace": namespace, "hash_annotation": True,
                                       "from_literal": {"interval": "10s"}})
    assert changed["content_hash"] != out["content_hash"]
    live = get_cm(kubectl, namespace, "exporter")
    assert live["metadata"]["annotations"]["datastore.kubernetes/content-hash"] == changed["content_hash"]


def test_immutable(run_module, kubectl, namespace):
    params = {"name": "frozen", "namespace": namespace, "immutable": True, "from_literal": {"a": "1"}}
    assert run_module("configmap", params)["changed"]
    live = get_cm(kubectl, namespace, "frozen")
    assert live["immutable"] is True
    assert not run_module("configmap", params)["changed"]

    failed = run_module("configmap", dict(params, from_literal={"a": "2"}))
    assert failed.get("failed")
    assert "ConfigMap %s/frozen: data cannot change while the ConfigMap is immutable" % namespace in failed["msg"]
    assert "hash_suffix" in failed["msg"] and "on_immutable=recreate" in failed["msg"]
    assert get_cm(kubectl, namespace, "frozen")["data"] == {"a": "1"}

    preview = run_module("configmap", dict(params, from_literal={"a": "2"}, on_immutable="recreate"), check=True)
    assert preview["changed"] and preview["recreated"]
    assert get_cm(kubectl, namespace, "frozen")["metadata"]["uid"] == live["metadata"]["uid"]

    recreated = run_module("configmap", dict(params, from_literal={"a": "2"}, on_immutable="recreate"))
    assert recreated["changed"] and recreated["recreated"], recreated
    now = get_cm(kubectl, namespace, "frozen")
    assert now["data"] == {"a": "2"} and now["immutable"] is True
    assert now["metadata"]["uid"] != live["metadata"]["uid"]

    # With hash_suffix an immutable ConfigMap simply gets a new generation.
    first = run_module("configmap", dict(params, name="frozen-gen", hash_suffix=True))
    second = run_module("configmap", dict(params, name="frozen-gen", hash_suffix=True, from_literal={"a": "2"}))
    assert not second.get("failed") and second["name"] != first["name"]
    assert get_cm(kubectl, namespace, second["name"])["immutable"] is True


def test_bad_input_writes_nothing(run_module, kubectl, namespace, tmp_path):
    out = run_module("configmap", {"name": "bad", "namespace": namespace, "from_literal": {"ok": "1", "not ok": "2"}})
    assert out.get("failed") and out["msg"].startswith("from_literal.not ok: key 'not ok'")
    (tmp_path / "ok").write_text("x")
    dup = run_module("configmap", {"name": "bad", "namespace": namespace, "from_literal": {"ok": "1"},
                                   "from_file": [str(tmp_path / "ok")]})
    assert dup.get("failed") and "'ok' is already defined by from_literal.ok" in dup["msg"]
    assert get_cm(kubectl, namespace, "bad") is None
