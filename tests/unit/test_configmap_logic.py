"""Unit tests of the configmap logic: sources, keys, hashing, generations, immutability."""

from __future__ import annotations

import base64
import os

import pytest

from ansible_collections.datastore.kubernetes.plugins.module_utils import _configmap as cm
from ansible_collections.datastore.kubernetes.plugins.module_utils._task import Task
from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import ImmutableField, InvalidInput

from testlib.fake_kube import FakeKube

BINARY = bytes(range(256))


def params(**kw):
    base = {"name": "app", "namespace": "ns", "state": "present", "hash_suffix": False, "keep_generations": 3,
            "hash_annotation": False, "on_immutable": "fail", "force_conflicts": False, "immutable": None}
    base.update(kw)
    return base


@pytest.mark.parametrize("key", ["a", "A-b_c.d", "x" * 253, ".hidden", "a..b"])
def test_valid_keys(key):
    assert cm.validate_key(key, "f") == key


@pytest.mark.parametrize("key", ["", "a b", "a/b", "x" * 254, ".", "..", "..a", "é"])
def test_invalid_keys_name_the_field(key):
    with pytest.raises(InvalidInput) as err:
        cm.validate_key(key, "from_literal.%s" % key)
    assert err.value.field == "from_literal.%s" % key


@pytest.mark.parametrize("name", ["Upper", "-a", "a_b", "a" * 254, ""])
def test_invalid_names(name):
    with pytest.raises(InvalidInput, match="name"):
        cm.validate_name(name)


def test_literal_values_become_text():
    data, binary = cm.build_content({"from_literal": {"a": True, "b": 5, "c": "x", "d": None}})
    assert data == {"a": "true", "b": "5", "c": "x", "d": ""}
    assert binary == {}


def test_env_file_parsing():
    text = "\ufeffA=1\n  # comment\n\n   B= two \nC=x=y\nD=\"quoted\"\n#E=5\nF=\n"
    pairs = cm.parse_env_file(text, "f.env", "from_env_file[0]")
    assert [(k, v) for k, v, _unused in pairs] == [("A", "1"), ("B", " two "), ("C", "x=y"), ("D", '"quoted"'), ("F", "")]


def test_env_file_key_with_trailing_space_is_rejected():
    # "B = two": the name part "B " is not a valid variable name, as kubectl says too.
    with pytest.raises(InvalidInput, match="line 1"):
        cm.parse_env_file("B = two\n", "f.env", "from_env_file[0]")


def test_env_file_line_without_equals_names_file_and_line():
    with pytest.raises(InvalidInput) as err:
        cm.parse_env_file("A=1\nJUSTNAME\n", "/x/f.env", "from_env_file[2]")
    assert err.value.field == "from_env_file[2]"
    assert "/x/f.env line 2" in err.value.msg


def test_all_sources(tmp_path):
    (tmp_path / "app.conf").write_text("port=1\n")
    (tmp_path / "blob.bin").write_bytes(BINARY)
    env = tmp_path / "vars.env"
    env.write_text("# settings\nLEVEL=debug\n\nMODE=fast\n")
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "one.yaml").write_text("one: 1\n")
    (conf / "two.bin").write_bytes(b"\xff\xfe\x00")
    (conf / "sub").mkdir()
    (conf / "sub" / "ignored").write_text("x")
    os.symlink(str(tmp_path / "app.conf"), str(conf / "link.conf"))
    data, binary = cm.build_content({
        "from_literal": {"lit": "v"},
        "from_file": [str(tmp_path / "app.conf"), {"key": "payload", "path": str(tmp_path / "blob.bin")}],
        "from_env_file": [str(env)],
        "from_dir": [str(conf)],
        "data": {"inline.txt": "hello"},
        "binary_data": {"raw": base64.b64encode(b"\x00\x01").decode()},
    })
    assert data == {"lit": "v", "app.conf": "port=1\n", "LEVEL": "debug", "MODE": "fast", "one.yaml": "one: 1\n",
                    "inline.txt": "hello"}
    assert set(binary) == {"payload", "two.bin", "raw"}
    assert base64.b64decode(binary["payload"]) == BINARY
    assert base64.b64decode(binary["two.bin"]) == b"\xff\xfe\x00"


def test_duplicate_key_across_sources_names_the_key(tmp_path):
    (tmp_path / "LEVEL").write_text("x")
    with pytest.raises(InvalidInput) as err:
        cm.build_content({"from_literal": {"LEVEL": "a"}, "from_file": [str(tmp_path / "LEVEL")]})
    assert err.value.field == "from_file[0]"
    assert "'LEVEL'" in err.value.msg and "from_literal.LEVEL" in err.value.msg


def test_from_file_errors(tmp_path):
    with pytest.raises(InvalidInput, match=r"from_file\[0\]: cannot read"):
        cm.build_content({"from_file": [str(tmp_path / "missing")]})
    with pytest.raises(InvalidInput, match=r"from_file\[0\]: .*from_dir"):
        cm.build_content({"from_file": [str(tmp_path)]})
    with pytest.raises(InvalidInput, match=r"from_file\[0\]\.path"):
        cm.build_content({"from_file": [{"key": "a"}]})
    with pytest.raises(InvalidInput, match=r"from_file\[0\]: key 'bad key'"):
        (tmp_path / "f").write_text("x")
        cm.build_content({"from_file": [{"key": "bad key", "path": str(tmp_path / "f")}]})
    with pytest.raises(InvalidInput, match=r"from_dir\[0\]"):
        cm.build_content({"from_dir": [str(tmp_path / "nope")]})
    with pytest.raises(InvalidInput, match=r"binary_data\.x"):
        cm.build_content({"binary_data": {"x": "not base64!"}})


def test_hash_is_stable_and_content_sensitive():
    one = cm.content_hash({"a": "1", "b": "2"}, {})
    assert one == cm.content_hash({"b": "2", "a": "1"}, {})
    assert len(one) == 10 and one.isalnum()
    assert one != cm.content_hash({"a": "1", "b": "3"}, {})
    assert one != cm.content_hash({"a": "1"}, {"b": "2"})


def _gen(name, number):
    return {"metadata": {"name": name, "annotations": {cm.GENERATION_ANNOTATION: str(number)}}}


def test_generation_numbers():
    assert cm.next_generation(None, []) == 1
    assert cm.next_generation(None, [_gen("a", 1), _gen("b", 4)]) == 5
    assert cm.next_generation(_gen("c", 5), [_gen("a", 1), _gen("b", 4)]) == 5  # re-run keeps it
    assert cm.next_generation(_gen("a", 1), [_gen("b", 4)]) == 5  # old content back: newest again


def test_prune_keeps_newest():
    others = [_gen("a", 1), _gen("b", 3), _gen("c", 2)]
    assert [o["metadata"]["name"] for o in cm.prune_candidates(others, 2)] == ["c", "a"]
    assert cm.prune_candidates(others, 4) == []
    assert [o["metadata"]["name"] for o in cm.prune_candidates(others, 1)] == ["b", "c", "a"]


def test_present_is_idempotent_and_reports_changes():
    kube = FakeKube()
    first = cm.run(Task(params(from_literal={"a": "1"})), kube)
    assert first["changed"] and first["created"] and first["name"] == "app"
    rv = first["configmap"]["metadata"]["resourceVersion"]
    again = cm.run(Task(params(from_literal={"a": "1"})), kube)
    assert not again["changed"] and again["configmap"]["metadata"]["resourceVersion"] == rv
    changed = cm.run(Task(params(from_literal={"a": "2"}), diff=True), kube)
    assert changed["changed"] and not changed["created"]
    assert changed["diff"]["before"]["data"] == {"a": "1"} and changed["diff"]["after"]["data"] == {"a": "2"}
    assert "managedFields" not in changed["configmap"]["metadata"]


def test_check_mode_writes_nothing():
    kube = FakeKube()
    out = cm.run(Task(params(from_literal={"a": "1"}), check_mode=True), kube)
    assert out["changed"] and kube.store == {}
    assert kube.writes() == []


def test_hash_suffix_generations_and_pruning():
    kube = FakeKube()
    names = []
    for value in "12345":
        out = cm.run(Task(params(from_literal={"v": value}, hash_suffix=True, keep_generations=3)), kube)
        names.append(out["name"])
        assert out["name"] == "app-" + out["content_hash"]
        assert out["configmap"]["metadata"]["labels"][cm.BASE_LABEL] == "app"
    live = sorted(n for (_unused, _unused, n) in kube.store)
    assert live == sorted(names[-3:])
    again = cm.run(Task(params(from_literal={"v": "5"}, hash_suffix=True, keep_generations=3)), kube)
    assert not again["changed"] and again["pruned"] == []
    # Check mode lists what would be pruned but keeps it.
    preview = cm.run(Task(params(from_literal={"v": "6"}, hash_suffix=True, keep_generations=1), check_mode=True), kube)
    assert sorted(preview["pruned"]) == sorted(names[-3:])
    assert sorted(n for (_unused, _unused, n) in kube.store) == sorted(names[-3:])
    # keep_generations=1 keeps only the current one, even when it is an old content.
    out = cm.run(Task(params(from_literal={"v": "3"}, hash_suffix=True, keep_generations=1)), kube)
    assert [n for (_unused, _unused, n) in kube.store] == [names[2]] and out["name"] == names[2]


def test_hash_suffix_name_limits():
    with pytest.raises(InvalidInput, match="^name: .*63"):
        cm.run(Task(params(name="a" * 64, hash_suffix=True)), FakeKube())
    with pytest.raises(InvalidInput, match="keep_generations"):
        cm.run(Task(params(hash_suffix=True, keep_generations=0)), FakeKube())


def test_hash_annotation():
    out = cm.run(Task(params(from_literal={"a": "1"}, hash_annotation=True)), FakeKube())
    assert out["configmap"]["metadata"]["annotations"][cm.HASH_ANNOTATION] == out["content_hash"]


def test_immutable_change_fails_clearly_or_recreates():
    kube = FakeKube()
    cm.run(Task(params(from_literal={"a": "1"}, immutable=True)), kube)
    uid = kube.store[("ConfigMap", "ns", "app")]["metadata"]["uid"]
    with pytest.raises(ImmutableField) as err:
        cm.run(Task(params(from_literal={"a": "2"}, immutable=True)), kube)
    assert "data" in err.value.msg and "hash_suffix" in err.value.msg and "ConfigMap ns/app" in err.value.msg
    preview = cm.run(Task(params(from_literal={"a": "2"}, immutable=True, on_immutable="recreate"), check_mode=True),
                     kube)
    assert preview["changed"] and preview["recreated"]
    assert kube.store[("ConfigMap", "ns", "app")]["metadata"]["uid"] == uid
    out = cm.run(Task(params(from_literal={"a": "2"}, immutable=True, on_immutable="recreate")), kube)
    assert out["recreated"] and out["changed"]
    live = kube.store[("ConfigMap", "ns", "app")]
    assert live["data"] == {"a": "2"} and live["metadata"]["uid"] != uid


def test_absent():
    kube = FakeKube()
    cm.run(Task(params(from_literal={"a": "1"})), kube)
    assert cm.run(Task(params(state="absent"), check_mode=True), kube)["deleted"] == ["app"]
    assert kube.store
    out = cm.run(Task(params(state="absent")), kube)
    assert out["changed"] and out["deleted"] == ["app"] and not kube.store
    assert not cm.run(Task(params(state="absent")), kube)["changed"]


def test_absent_with_hash_suffix_removes_every_generation():
    kube = FakeKube()
    for value in "12":
        cm.run(Task(params(from_literal={"v": value}, hash_suffix=True)), kube)
    cm.run(Task(params(name="other", from_literal={"v": "1"}, hash_suffix=True)), kube)
    out = cm.run(Task(params(state="absent", hash_suffix=True)), kube)
    assert len(out["deleted"]) == 2
    generated = cm.run(Task(params(name="other", from_literal={"v": "1"}, hash_suffix=True)), kube)["name"]
    assert [n for (_unused, _unused, n) in kube.store] == [generated]
