"""Generated bad input for every module: a clear failure naming the field, never a traceback, nothing written.

Each case starts from a task that is valid (checked once in check mode) and breaks
exactly one thing: an unknown option, a value of the wrong type, a choice that is
not offered, a missing required option, or a value the module must refuse (names
Kubernetes would reject, negative counts, malformed durations, quantities and
templates). Modules run in-process (``InProcessRunner``), about a hundred times
faster than one interpreter per call. Afterwards the test namespace holds nothing
but what the cluster puts in every namespace, and Vault holds no new mount, role
or lease.
"""

from __future__ import annotations

import os
import string
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client as k8s

from testlib.charts import write_chart
from testlib.in_process import InProcessRunner
from testlib.reliability import record
from testlib.vault import CREATE_SQL, connection_url, count_leases

EXAMPLES = int(os.environ.get("RELIABILITY_BAD_INPUT_EXAMPLES", "200"))
# `make test` draws the same inputs every run, so CI is repeatable; `make reliability`
# sets RELIABILITY_RANDOM=1 to explore new ones each time.
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=os.environ.get("RELIABILITY_RANDOM") != "1",
                    suppress_health_check=list(HealthCheck))
TRIED = {}
CLEAN = set()  # modules whose every input failed clearly, without a traceback or a write

# -- value generators ------------------------------------------------------------------
words = st.text(alphabet=string.ascii_letters + string.digits + "_ -.:/@!", min_size=1, max_size=20)
bad_value_type = words.filter(lambda w: w not in ("raw", "string", "json", "file"))
bad_type_entry = st.fixed_dictionaries({"path": st.just("a"), "value": words, "value_type": bad_value_type})
# Lists of small numbers only: ansible-core's own int check raises OverflowError on [2**63, 0, 0]
# (it hands the list to decimal.Decimal as a sign/digits/exponent tuple); that is not this collection's code.
not_an_int = st.one_of(st.text(alphabet=string.ascii_letters + "_-!", min_size=1, max_size=12),
                       st.lists(st.integers(min_value=2, max_value=1000), min_size=1, max_size=3),
                       st.dictionaries(words, words, min_size=1))
not_a_bool = st.text(alphabet=string.ascii_letters, min_size=2, max_size=10).filter(
    lambda t: t.lower() not in ("yes", "no", "true", "false", "on", "off", "y", "n"))
not_a_dict = st.one_of(st.lists(st.integers(), min_size=1, max_size=3), st.integers(),
                       st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=10).filter(
                           lambda t: "=" not in t and not t.startswith("{")))
not_a_list = st.dictionaries(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=5), st.integers(),
                             min_size=1, max_size=3)
unknown_option = st.text(alphabet=string.ascii_lowercase + "_", min_size=3, max_size=15).map(lambda t: "zz_" + t)
bad_dns_label = st.one_of(
    st.text(alphabet=string.ascii_uppercase + "_!@ ", min_size=1, max_size=10).map(lambda t: "a" + t),
    st.integers(min_value=64, max_value=90).map(lambda n: "a" * n),
    st.sampled_from(["-lead", "trail-", "has.dot", "Under_score", "sp ace", "ünï"]))
bad_dns_subdomain = st.one_of(
    st.text(alphabet=string.ascii_uppercase + "_!@ ", min_size=1, max_size=10).map(lambda t: "a" + t),
    st.integers(min_value=254, max_value=300).map(lambda n: "a" * n),
    st.sampled_from(["-lead", "trail-", "Under_score", "sp ace", "ünï", "dot..dot", ".lead"]))
negative = st.integers(max_value=-1)
bad_duration = st.one_of(st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=8).filter(
    lambda t: t.strip() and not t.strip().isdigit()), negative, st.booleans())
bad_quantity = st.one_of(st.text(alphabet=string.ascii_letters + "!", min_size=1, max_size=6)
                         .filter(lambda t: t not in ("k", "m", "M", "G", "T", "P", "E")),
                         st.sampled_from(["0", "0Gi", "-1Gi", "1.2.3Gi", "10 GB", "Gi"]))


def unknown(base):
    return unknown_option.map(lambda key: (key, dict(base, **{key: "x"})))


def replace(base, field, values, path=None):
    """Cases where ``field`` (a top-level option) takes one of ``values``; ``path`` is what the message names."""
    return values.map(lambda v: (path or field, dict(base, **{field: v})))


def nested(base, field, index, key, values, path=None):
    """Cases where ``base[field][index][key]`` takes one of ``values``."""
    def build(value):
        items = [dict(item) for item in base[field]]
        items[index][key] = value
        return path or key, dict(base, **{field: items})
    return values.map(build)


def drop(base, field):
    return st.just((field, {k: v for k, v in base.items() if k != field}))


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner(localenv):
    return InProcessRunner(localenv)


@pytest.fixture
def empty_ns(namespace):
    return namespace


@pytest.fixture(scope="module")
def db_mount(vault, localenv):
    """A working engine with a role, so a vault_db_secret task that slipped through would mint a lease."""
    name = "rel-bad-db-" + uuid.uuid4().hex[:6]
    vault.sys.enable_secrets_engine("database", path=name)
    vault.write_data("%s/config/pg" % name, data={
        "plugin_name": "postgresql-database-plugin", "connection_url": connection_url(localenv),
        "username": localenv["PGUSER"], "password": localenv["PGPASSWORD"], "allowed_roles": "*"})
    vault.write_data("%s/roles/app" % name, data={
        "db_name": "pg", "creation_statements": [CREATE_SQL[0], CREATE_SQL[1] % localenv["PGDATABASE"]],
        "default_ttl": 600, "max_ttl": 3600})
    yield name
    vault.sys.disable_secrets_engine(name)


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory):
    return write_chart(tmp_path_factory.mktemp("chart") / "tiny", app_version=None)


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    if TRIED:
        record("bad_input", {"inputs_tried": dict(TRIED), "inputs_total": sum(TRIED.values()),
                             "modules_clean": sorted(CLEAN), "modules_with_findings": sorted(set(TRIED) - CLEAN)})


def assert_nothing_written(kube, namespace):
    core, apps, batch = k8s.CoreV1Api(kube), k8s.AppsV1Api(kube), k8s.BatchV1Api(kube)
    left = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items
            if c.metadata.name != "kube-root-ca.crt"]
    left += ["Secret " + s.metadata.name for s in core.list_namespaced_secret(namespace).items]
    left += ["Service " + s.metadata.name for s in core.list_namespaced_service(namespace).items]
    left += ["StatefulSet " + s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items]
    left += ["Job " + j.metadata.name for j in batch.list_namespaced_job(namespace).items]
    assert not left, "bad input wrote objects: %s" % left


def check_case(runner, module, case):
    field, params = case
    result = runner(module, params)
    TRIED[module] = TRIED.get(module, 0) + 1
    shown = {k: v for k, v in params.items() if k not in ("token", "password")}
    assert "_traceback" not in result, "%s raised with %r:\n%s" % (module, shown, result["_traceback"])
    assert result.get("failed") is True, "%s accepted bad %s: %r -> changed=%s" % (
        module, field, shown, result.get("changed"))
    assert "exception" not in result, "%s failed with an exception for %s: %s" % (module, field, result)
    assert "Traceback" not in result["_stdout"] + result["_stderr"], result
    assert field in result["msg"], "%s: the message does not name %s: %s (input %r)" % (
        module, field, result["msg"], shown)


def valid_in_check_mode(runner, module, params):
    result = runner(module, params, check=True)
    assert not result.get("failed"), "the base task of %s is not valid: %s" % (module, result.get("msg"))


# -- one test per module -----------------------------------------------------------------
def test_statefulset(runner, empty_ns, kube):
    base = {"name": "rel-sts", "namespace": empty_ns, "image": "busybox", "replicas": 1, "wait": False,
            "ports": [{"name": "web", "container_port": 80}],
            "volume_claim_templates": [{"name": "data", "size": "1Gi", "mount_path": "/data"}]}
    valid_in_check_mode(runner, "statefulset", base)
    cases = st.one_of(
        unknown(base), drop(base, "name"),
        replace(base, "name", bad_dns_label), replace(base, "namespace", bad_dns_label),
        replace(base, "replicas", st.one_of(not_an_int, negative)),
        replace(base, "state", words.filter(lambda w: w not in ("present", "absent"))),
        replace(base, "pod_management_policy", words),
        replace(base, "wait", not_a_bool), replace(base, "wait_timeout", st.one_of(not_an_int, negative)),
        replace(base, "labels", st.one_of(not_a_dict, st.dictionaries(words, st.integers(), min_size=1))),
        replace(base, "env", st.one_of(st.integers(), st.lists(st.integers(), min_size=1))),
        replace(base, "seed_count", negative), replace(base, "cluster_domain", bad_dns_subdomain),
        replace(base, "update_strategy", st.integers(max_value=-1).map(lambda p: {"partition": p}),
                "update_strategy.partition"),
        nested(base, "ports", 0, "container_port", st.one_of(st.integers(min_value=65536), st.integers(max_value=0)),
               "container_port"),
        nested(base, "ports", 0, "name", bad_dns_label, "ports[0].name"),
        nested(base, "volume_claim_templates", 0, "size", bad_quantity, "size"),
        nested(base, "volume_claim_templates", 0, "mount_path", words.filter(lambda w: not w.startswith("/")),
               "mount_path"),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "statefulset", case)

    run()
    assert TRIED["statefulset"] >= EXAMPLES
    assert_nothing_written(kube, empty_ns)
    CLEAN.add("statefulset")


def test_configmap(runner, empty_ns, kube):
    base = {"name": "rel-cm", "namespace": empty_ns, "data": {"a": "b"}}
    valid_in_check_mode(runner, "configmap", base)
    cases = st.one_of(
        unknown(base), drop(base, "name"), drop(base, "namespace"),
        replace(base, "name", bad_dns_subdomain),
        replace(base, "namespace", bad_dns_label),
        replace(base, "data", not_a_dict),
        replace(base, "data", st.dictionaries(st.text(alphabet="!@# /", min_size=1, max_size=5), words,
                                              min_size=1), "data"),
        replace(base, "state", words.filter(lambda w: w not in ("present", "absent"))),
        replace(base, "keep_generations", not_an_int),
        replace(dict(base, hash_suffix=True), "keep_generations", st.integers(max_value=0)),
        replace(base, "immutable", not_a_bool), replace(base, "hash_suffix", not_a_bool),
        replace(base, "from_file", st.lists(st.just("/nonexistent/" + uuid.uuid4().hex), min_size=1, max_size=1)),
        replace(base, "binary_data", st.dictionaries(st.just("blob"), st.just("%%not-base64%%"), min_size=1)),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "configmap", case)

    run()
    assert TRIED["configmap"] >= EXAMPLES
    assert_nothing_written(kube, empty_ns)
    CLEAN.add("configmap")


def test_resource(runner, empty_ns, kube):
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rel-res"}, "data": {"a": "b"}}
    base = {"namespace": empty_ns, "definition": [good], "wait": False}
    valid_in_check_mode(runner, "resource", base)

    def with_object(change, alone=False):
        def build(value):
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rel-res"}, "data": {"a": "b"}}
            field = change(obj, value)
            # Next to a valid object, for what the module checks itself: the whole task must fail before
            # either is written. What only the API server can refuse goes alone (see the test below).
            return field, dict(base, definition=[obj] if alone else [dict(good, metadata={"name": "rel-res-ok"}),
                                                                     obj])
        return build

    cases = st.one_of(
        unknown(base), drop(base, "definition"),
        replace(base, "concurrency", st.one_of(not_an_int, st.integers(max_value=0))),
        replace(base, "state", words.filter(lambda w: w not in ("present", "absent"))),
        replace(base, "definition", st.one_of(st.integers(), st.lists(st.integers(), min_size=1))),
        replace(base, "src", st.just("/nonexistent/%s.yaml" % uuid.uuid4().hex), "src"),
        bad_dns_subdomain.map(with_object(lambda o, v: o["metadata"].update(name=v) or "name", alone=True)),
        words.filter(lambda w: w != "ConfigMap").map(with_object(lambda o, v: o.update(kind="Zz" + v) or "kind")),
        st.just(None).map(with_object(lambda o, v: o.pop("apiVersion") and "apiVersion")),
        st.just(None).map(with_object(lambda o, v: o["metadata"].pop("name") and "name")),
        st.integers().map(with_object(lambda o, v: o["metadata"].update(name=v) or "name")),
        st.just(None).map(with_object(lambda o, v: o["metadata"].update(name="rel-res-ok") or "also defined")),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "resource", case)

    run()
    assert TRIED["resource"] >= EXAMPLES
    assert_nothing_written(kube, empty_ns)
    CLEAN.add("resource")


def test_resource_server_refusal_writes_nothing(runner, empty_ns, kube):
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rel-res-ok"}, "data": {"a": "b"}}
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Name"}, "data": {"a": "b"}}
    result = runner("resource", {"namespace": empty_ns, "definition": [good, bad], "wait": False})
    assert result.get("failed") and "metadata.name" in result["msg"]
    assert_nothing_written(kube, empty_ns)


def test_info(runner, empty_ns):
    base = {"name": "rel-sts", "namespace": empty_ns}
    valid_in_check_mode(runner, "info", base)
    cases = st.one_of(
        unknown(base), drop(base, "name"),
        replace(base, "name", bad_dns_label), replace(base, "namespace", bad_dns_label),
        replace(base, "service_name", bad_dns_label), replace(base, "cluster_domain", bad_dns_subdomain),
        replace(base, "vault_secret", st.lists(bad_dns_subdomain, min_size=1, max_size=2), "vault_secret[0]"),
        replace(base, "vault_secret", not_a_list),
        replace(base, "request_timeout", st.one_of(not_an_int, st.sampled_from(["inf", "-inf", "nan", "-1", "-0.5"]))),
        replace(base, "api_retries", negative),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "info", case)

    run()
    assert TRIED["info"] >= EXAMPLES
    CLEAN.add("info")


def test_job(runner, empty_ns, kube):
    base = {"name": "rel-job", "namespace": empty_ns, "image": "busybox", "command": ["true"], "wait": False}
    valid_in_check_mode(runner, "job", base)
    cases = st.one_of(
        unknown(base),
        replace(base, "name", bad_dns_subdomain), replace(base, "namespace", bad_dns_label),
        replace(base, "completions", st.one_of(not_an_int, negative)),
        replace(base, "parallelism", st.one_of(not_an_int, negative)),
        replace(base, "backoff_limit", st.one_of(not_an_int, negative)),
        replace(base, "active_deadline_seconds", st.one_of(not_an_int, negative)),
        replace(base, "ttl_seconds_after_finished", st.one_of(not_an_int, negative)),
        replace(base, "restart_policy", words.filter(lambda w: w not in ("Never", "OnFailure"))),
        replace(base, "rerun", words.filter(lambda w: w not in ("never", "on_change", "always"))),
        replace(base, "env", not_a_dict), replace(base, "log_lines", not_an_int),
        replace(base, "completion_mode", words),
        replace(base, "script_configmap", st.just({"name": "scripts", "key": "run.sh"}), "script_configmap"),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "job", case)

    run()
    assert TRIED["job"] >= EXAMPLES
    assert_nothing_written(kube, empty_ns)
    CLEAN.add("job")


def test_helm_release(runner, empty_ns, kube, chart_dir, localenv):
    base = {"name": "rel-rel", "namespace": empty_ns, "chart_ref": chart_dir, "wait": False,
            "binary_path": localenv["HELM"]}
    valid_in_check_mode(runner, "helm_release", base)
    cases = st.one_of(
        unknown(base), drop(base, "namespace"), drop(base, "chart_ref"),
        replace(base, "name", bad_dns_subdomain), replace(base, "namespace", bad_dns_label),
        replace(base, "values", not_a_dict), replace(base, "values_files", not_a_list),
        replace(base, "values_files", st.just(["/nonexistent/%s.yaml" % uuid.uuid4().hex]), "values_files"),
        replace(base, "on_pending", words.filter(lambda w: w not in ("fail", "rollback", "reinstall"))),
        replace(base, "wait_timeout", st.one_of(not_an_int, negative)),
        replace(base, "chart_ref", st.just("/nonexistent/chart-" + uuid.uuid4().hex), "chart_ref"),
        replace(base, "set_values", st.lists(st.fixed_dictionaries({"value": words}), min_size=1, max_size=1),
                "path"),
        replace(base, "set_values", st.lists(bad_type_entry, min_size=1, max_size=1), "value_type"),
        replace(base, "set_values", st.just([{"path": "a", "value": "{not json", "value_type": "json"}]),
                "set_values"),
        replace(base, "chart_version", st.just("not a version!"), "chart_version"),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "helm_release", case)

    run()
    assert TRIED["helm_release"] >= EXAMPLES
    assert_nothing_written(kube, empty_ns)
    CLEAN.add("helm_release")


def test_vault_db_engine(runner, vault, localenv):
    mount = "rel-bad-engine-" + uuid.uuid4().hex[:6]
    connection = {"name": "pg", "plugin_name": "postgresql-database-plugin",
                  "connection_url": connection_url(localenv), "username": localenv["PGUSER"],
                  "password": localenv["PGPASSWORD"], "allowed_roles": ["app"]}
    role = {"name": "app", "db_name": "pg", "creation_statements": [CREATE_SQL[0]], "default_ttl": "10m",
            "max_ttl": "1h"}
    base = {"mount_point": mount, "connections": [connection], "roles": [role]}
    valid_in_check_mode(runner, "vault_db_engine", base)
    cases = st.one_of(
        unknown(base),
        replace(base, "connections", not_a_list), replace(base, "roles", st.integers()),
        replace(base, "update_password", words.filter(lambda w: w not in ("always", "on_create"))),
        replace(base, "auth_method", words.filter(lambda w: w not in (
            "token", "approle", "kubernetes", "userpass", "jwt", "oidc"))),
        replace(base, "url", words.filter(lambda w: not w.startswith("http")).map(lambda w: "ftp" + w)),
        nested(base, "connections", 0, "plugin_name", st.just(""), "plugin_name"),
        nested(base, "connections", 0, "connection_url", st.just(""), "connection_url"),
        nested(base, "connections", 0, "options", st.sampled_from([{"password": "x"}, {"name": "y"}]), "options"),
        nested(base, "connections", 0, "state", words.filter(lambda w: w not in ("present", "absent")), "state"),
        nested(base, "roles", 0, "default_ttl", bad_duration, "default_ttl"),
        nested(base, "roles", 0, "max_ttl", bad_duration, "max_ttl"),
        nested(base, "roles", 0, "creation_statements", st.one_of(st.integers(), st.just(None)),
               "creation_statements"),
        nested(base, "roles", 0, "creation_statements", st.lists(st.integers(), min_size=1, max_size=2),
               "creation_statements"),
        st.just(("names must be unique", dict(base, roles=[role, role]))),
    )

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "vault_db_engine", case)

    run()
    assert TRIED["vault_db_engine"] >= EXAMPLES
    assert mount + "/" not in vault.sys.list_mounted_secrets_engines()["data"], "bad input enabled a mount"
    CLEAN.add("vault_db_engine")


def test_vault_db_secret(runner, vault, db_mount, empty_ns, kube):
    base = {"name": "rel-creds", "namespace": empty_ns, "mount_point": db_mount, "role": "app",
            "templates": {"uri": "postgresql://{username}:{password_url}@db:5432/app"}}
    valid_in_check_mode(runner, "vault_db_secret", base)
    cases = st.one_of(
        unknown(base), drop(base, "role"), drop(base, "name"),
        replace(base, "credential_type", words.filter(lambda w: w not in ("dynamic", "static"))),
        replace(base, "templates", st.sampled_from([{"uri": "{nope}"}, {"uri": "{username"}, {"uri": "{0}"},
                                                    {"password": "{username}"}, {"b ad": "x"}]), "templates"),
        replace(base, "templates", st.sampled_from(["}", "{", "{username!z}", "{password:>>>}", "{lease_id.x}", "{}"])
                .map(lambda t: {"k": "x" + t}),
                "templates"),
        replace(base, "renew_before", bad_duration), replace(base, "rotate_before", bad_duration),
        replace(base, "renew_increment", bad_duration),
        replace(base, "revoke_grace", st.one_of(not_an_int, negative)),
        replace(base, "username_key", st.text(alphabet="!@# /$", min_size=1, max_size=4), "templates"),
        replace(base, "annotations", st.just({"datastore.kubernetes/vault-lease-id": "x"}), "annotations"),
        replace(base, "restart_targets", st.lists(st.fixed_dictionaries({"kind": words.filter(
            lambda w: w not in ("StatefulSet", "Deployment", "DaemonSet")), "name": st.just("x")}),
            min_size=1, max_size=1), "kind"),
        replace(base, "auth_method", words.filter(lambda w: w not in (
            "token", "approle", "kubernetes", "userpass", "jwt", "oidc"))),
        replace(base, "url", words.map(lambda w: "ftp://" + w), "url"),
    )
    before = count_leases(vault, db_mount, "app")

    @SETTINGS
    @given(case=cases)
    def run(case):
        check_case(runner, "vault_db_secret", case)

    run()
    assert TRIED["vault_db_secret"] >= EXAMPLES
    assert count_leases(vault, db_mount, "app") == before, "bad input minted a lease"
    assert_nothing_written(kube, empty_ns)
    CLEAN.add("vault_db_secret")
