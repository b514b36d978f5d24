# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install, upgrade and uninstall Helm releases with the helm CLI (v3 and v4).

Idempotence without the helm-diff plugin: ``helm status -o json`` carries the
release's state, revision, user-supplied values and the revision's description;
``helm get metadata -o json`` carries the chart name and version. A run compares
those with the request and runs ``helm upgrade`` only when one differs, so an
unchanged run never creates a revision.

A chart read from a local directory or archive can change without a version bump,
so a digest of its files (which covers Chart.yaml, hence name and version) is
written into the revision's description. Helm 3 does not show release labels, while
both versions show the description, so for a local chart one ``helm status`` call
decides a no-op.

Values are merged and masked in ``_helm_values``.
"""

from __future__ import annotations

__metaclass__ = type

import fnmatch
import hashlib
import json
import os
import re
import tarfile
import tempfile

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError, HelmError, InvalidInput
from ansible_collections.datastore.kubernetes.plugins.module_utils._names import is_dns_label, is_dns_subdomain
from ansible_collections.datastore.kubernetes.plugins.module_utils._helm_values import (
    mask_manifest,
    mask_values,
    merged_values,
    scrub,
    sensitive_leaves,
    values_equal,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

DESCRIPTION_PREFIX = "datastore.kubernetes chart-digest="
# An operation that did not finish: helm refuses to upgrade these. A "failed" release is not one of
# them: helm upgrades it (against the last deployed revision), and so does this module.
PENDING_STATES = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")
# helm's own rules; checked here because a name starting with "-" would reach helm's argv as a flag.
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")


# -- charts ----------------------------------------------------------------------
class Chart:
    """Where the chart comes from, and what can be known about it without helm."""

    def __init__(self, params):
        ref = params["chart_ref"]
        self.ref = ref
        self.repo_url = params.get("chart_repo_url")
        self.version = params.get("chart_version")
        self.name = None
        self.digest = None
        self.meta = None
        if ref.startswith("oci://"):
            self.kind = "oci"
            self.name = ref.rstrip("/").rsplit("/", 1)[-1].split(":", 1)[0]
        elif self.repo_url:
            self.kind = "repo"
            self.name = ref
        elif os.path.isdir(ref):
            self.kind = "dir"
            meta = _read_chart_yaml(os.path.join(ref, "Chart.yaml"))
            self.meta = meta
            self.name, self.version = meta.get("name"), str(meta.get("version"))
            self.digest = directory_digest(ref)
        elif os.path.isfile(ref):
            self.kind = "archive"
            meta, self.digest = archive_info(ref)
            self.meta = meta
            self.name, self.version = meta.get("name"), str(meta.get("version"))
        elif ref.startswith(("/", "./", "../", "~")):
            # helm reads these as paths too; say which option is wrong instead of helm's "path not found".
            raise InvalidInput("chart_ref", "%s does not exist (a local chart is a directory or a packaged .tgz)"
                               % ref)
        else:
            # A name from a repository added with `helm repo add` (repo/chart).
            self.kind = "named"
            self.name = ref.rsplit("/", 1)[-1]
        if self.kind in ("dir", "archive") and params.get("chart_version"):
            if str(params["chart_version"]).lstrip("v") != (self.version or "").lstrip("v"):
                raise InvalidInput("chart_version", "%s asked, but the chart at %s is version %s"
                                   % (params["chart_version"], ref, self.version))

    @property
    def local(self):
        return self.kind in ("dir", "archive")

    def exact_version(self):
        """The version that will be installed, when known without asking helm."""
        if self.version and _EXACT_VERSION.match(str(self.version)):
            return str(self.version).lstrip("v")
        return None


def _read_chart_yaml(path):
    try:
        with open(path) as handle:
            meta = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput("chart_ref", "%s is not a chart: %s" % (os.path.dirname(path), exc))
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise InvalidInput("chart_ref", "%s has no name or version" % path)
    return meta


def _helmignore(root):
    patterns = []
    try:
        with open(os.path.join(root, ".helmignore")) as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#") and not line.startswith("!"):
                    patterns.append(line)
    except OSError:
        pass
    return patterns


def _ignored(rel, is_dir, patterns):
    base = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        if pat.endswith("/"):
            if is_dir and (fnmatch.fnmatch(rel, pat[:-1]) or fnmatch.fnmatch(base, pat[:-1])):
                return True
            continue
        if fnmatch.fnmatch(rel, pat.lstrip("/")) or ("/" not in pat and fnmatch.fnmatch(base, pat)):
            return True
    return False


def directory_digest(root):
    """sha256 over the chart's files (names and content), honouring .helmignore and skipping VCS dirs."""
    patterns = _helmignore(root)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".hg", ".svn")
                             and not _ignored(rel_dir + d, True, patterns))
        for fname in sorted(filenames):
            rel = rel_dir + fname
            if _ignored(rel, False, patterns):
                continue
            with open(os.path.join(dirpath, fname), "rb") as handle:
                content = handle.read()
            digest.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()[:40]


def archive_info(path):
    """Chart.yaml and a content digest of a packaged chart; repackaging the same files keeps the digest."""
    digest = hashlib.sha256()
    meta = None
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if not member.isfile():
                    continue
                content = tar.extractfile(member).read()
                digest.update(member.name.encode("utf-8") + b"\0" + hashlib.sha256(content).digest())
                if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                    meta = yaml.safe_load(content) or {}
    except (OSError, tarfile.TarError, yaml.YAMLError) as exc:
        raise InvalidInput("chart_ref", "%s is not a packaged chart: %s" % (path, exc))
    if not isinstance(meta, dict) or not meta.get("name"):
        raise InvalidInput("chart_ref", "%s has no Chart.yaml" % path)
    return meta, digest.hexdigest()[:40]


# -- the helm CLI ----------------------------------------------------------------
def parse_version(text):
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    if not match:
        raise HelmError("cannot tell the helm version from %r" % (text or "")[:100])
    return tuple(int(x) for x in match.groups())


def connection_args(params):
    """Global helm flags for the cluster connection, plus environment and temp files to remove."""
    args, env, temps = [], {}, []
    kubeconfig = params.get("kubeconfig")
    if isinstance(kubeconfig, dict):
        fd, path = tempfile.mkstemp(prefix="helm-kubeconfig-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump(kubeconfig, handle)
        temps.append(path)
        args += ["--kubeconfig", path]
    elif isinstance(kubeconfig, list):
        env["KUBECONFIG"] = os.pathsep.join(os.path.expanduser(str(p)) for p in kubeconfig)
    elif kubeconfig:
        paths = [p for p in str(kubeconfig).split(os.pathsep) if p]
        if len(paths) == 1:
            args += ["--kubeconfig", os.path.expanduser(paths[0])]
        else:
            env["KUBECONFIG"] = str(kubeconfig)
    if params.get("context"):
        args += ["--kube-context", params["context"]]
    if params.get("host"):
        args += ["--kube-apiserver", params["host"]]
    if params.get("api_key"):
        # Through the environment, not argv: other local users can read a process's
        # arguments, but not its environment.
        env["HELM_KUBETOKEN"] = params["api_key"]
    if params.get("ca_cert"):
        args += ["--kube-ca-file", params["ca_cert"]]
    if params.get("validate_certs") is False:
        args.append("--kube-insecure-skip-tls-verify")
    if params.get("client_cert") or params.get("client_key"):
        raise InvalidInput("client_cert", "helm takes client certificates only from a kubeconfig; "
                                          "use kubeconfig instead of client_cert/client_key")
    if params.get("impersonate_user"):
        args += ["--kube-as-user", params["impersonate_user"]]
    for group in params.get("impersonate_groups") or []:
        args += ["--kube-as-group", group]
    return args, env, temps


class Helm:
    """Runs helm with argv lists and counts the invocations."""

    def __init__(self, binary, run_command, conn_args=(), env=None, secrets=()):
        self.binary = binary
        self._run_command = run_command
        self.conn_args = list(conn_args)
        self.env = dict(env or {})
        self.secrets = list(secrets)
        self.invocations = 0
        self._version = None

    def run(self, args, allow_not_found=False):
        """Run ``helm <args>``; returns stdout, or ``None`` for a missing release when allowed."""
        argv = [self.binary] + list(args) + self.conn_args
        self.invocations += 1
        rc, out, err = self._run_command(argv, self.env)
        if rc != 0:
            if allow_not_found and "not found" in (err or "").lower():
                return None
            raise HelmError("helm %s failed (rc=%s): %s" % (args[0] if args[0] != "get" else " ".join(args[:2]),
                                                            rc, self._clean(err or out)))
        return out

    def _clean(self, text):
        tokens = [self.env["HELM_KUBETOKEN"]] if self.env.get("HELM_KUBETOKEN") else []
        text = scrub((text or "").strip(), self.secrets + tokens)
        return text[-2000:]

    @property
    def version(self):
        """(major, minor, patch) of the binary, asked once per run and only when an upgrade's flags depend on it."""
        if self._version is None:
            self._version = parse_version(self.run(["version", "--template", "{{.Version}}"]))
        return self._version

    def run_json(self, args, allow_not_found=False):
        out = self.run(args, allow_not_found=allow_not_found)
        if out is None:
            return None
        return parse_json_output(out)

    def status(self, name, namespace):
        return self.run_json(["status", name, "-n", namespace, "-o", "json"], allow_not_found=True)

    def metadata(self, name, namespace):
        return self.run_json(["get", "metadata", name, "-n", namespace, "-o", "json"], allow_not_found=True)

    def show_chart_version(self, chart, params):
        args = ["show", "chart", chart_arg(chart)] + source_args(chart, params)
        meta = yaml.safe_load(self.run(args)) or {}
        return str(meta.get("name") or chart.name), str(meta.get("version") or "").lstrip("v")


def parse_json_output(out):
    """The JSON document helm printed (v3 may print a notice line before it)."""
    text = (out or "").strip()
    start = text.find("{")
    if start < 0:
        raise HelmError("helm printed no JSON: %s" % text[:300])
    try:
        return json.loads(text[start:])
    except ValueError:
        raise HelmError("helm printed unreadable JSON: %s" % text[:300])


def chart_arg(chart):
    return chart.ref


def source_args(chart, params):
    """Flags that locate the chart: --repo, --version, credentials, --plain-http."""
    args = []
    if chart.kind == "repo":
        args += ["--repo", chart.repo_url]
    if chart.version and not chart.local:
        args += ["--version", str(chart.version)]
    if params.get("repo_username"):
        args += ["--username", params["repo_username"]]
    if params.get("repo_password"):
        args += ["--password", params["repo_password"]]
    if params.get("plain_http") and not chart.local:
        args.append("--plain-http")
    return args


def upgrade_args(name, namespace, chart, params, helm_version, values_file, dry_run=False):
    """argv (after the binary) of ``helm upgrade --install`` for this helm version.

    ``helm_version`` returns the binary's (major, minor, patch); it is called only for
    O(atomic) and O(take_ownership), so a plain upgrade does not ask helm.
    """
    args = ["upgrade", name, chart_arg(chart), "--install", "-n", namespace, "-o", "json",
            "--reset-values", "-f", values_file]
    args += source_args(chart, params)
    if params.get("create_namespace"):
        args.append("--create-namespace")
    if params.get("wait"):
        args.append("--wait")  # helm 3's switch; helm 4 reads it as --wait=watcher
    args += ["--timeout", "%ss" % (params.get("wait_timeout") or 300)]
    if params.get("atomic"):
        args.append("--rollback-on-failure" if helm_version()[0] >= 4 else "--atomic")
    if params.get("take_ownership"):
        found = helm_version()
        if found < (3, 17, 0):
            raise InvalidInput("take_ownership", "needs helm 3.17 or later (found %s)" % ".".join(map(str, found)))
        args.append("--take-ownership")
    if chart.digest:
        args += ["--description", DESCRIPTION_PREFIX + chart.digest]
    if dry_run:
        args.append("--dry-run=server")
    return args


def release_facts(rel, chart_meta=None):
    """What the result reports about a release JSON (status or upgrade output).

    ``helm status`` leaves the chart out; ``chart_meta`` ({name, version, appVersion})
    then comes from ``helm get metadata`` or from the local chart.
    """
    info = rel.get("info") or {}
    meta = (rel.get("chart") or {}).get("metadata") or chart_meta or {}
    return {"revision": rel.get("version"), "status": info.get("status"), "chart": meta.get("name"),
            "chart_version": meta.get("version"), "app_version": meta.get("appVersion"),
            "description": info.get("description")}


def pending_state(rel):
    status = ((rel or {}).get("info") or {}).get("status")
    return status if status in PENDING_STATES else None


def compare_values(rel, wanted_values):
    return [] if values_equal(rel.get("config"), wanted_values) else ["values"]


def compare_chart(chart, deployed_meta, resolved_version=None):
    """Chart differences against ``helm get metadata`` output ({name, version, ...})."""
    changes = []
    name = deployed_meta.get("name") or deployed_meta.get("chart")
    if chart.name and name != chart.name:
        changes.append("chart %s -> %s" % (name, chart.name))
    version = resolved_version or chart.exact_version()
    deployed_version = str(deployed_meta.get("version") or "").lstrip("v")
    if version and deployed_version != version:
        changes.append("chart version %s -> %s" % (deployed_version, version))
    return changes


def compare_digest(rel, chart):
    """A local chart's digest against the one its last revision recorded."""
    description = (rel.get("info") or {}).get("description") or ""
    if description == DESCRIPTION_PREFIX + chart.digest:
        return []
    if description.startswith(DESCRIPTION_PREFIX):
        return ["chart content"]
    return ["chart content (revision %s was not made by this module)" % rel.get("version")]


def write_values_file(values):
    """Values go to helm in a private temp file: they may hold secrets, which must not be in argv."""
    fd, path = tempfile.mkstemp(prefix="helm-values-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return path


def wait_args(params, version):
    args = []
    if params.get("wait"):
        args.append("--wait=watcher" if version[0] >= 4 else "--wait")
    return args + ["--timeout", "%ss" % (params.get("wait_timeout") or 300)]


def _diff(before_rel, after_manifest, secrets, name):
    before = mask_manifest((before_rel or {}).get("manifest"), secrets)
    return {"before": before, "after": mask_manifest(after_manifest, secrets),
            "before_header": "release %s (revision %s)" % (name, (before_rel or {}).get("version", "none")),
            "after_header": "release %s (requested)" % name}


def _handle_pending(helm, rel, params, check_mode, result):
    """A release left half-done blocks helm; do what on_pending says. Returns the release to continue from."""
    name, namespace = params["name"], params["namespace"]
    state, revision = pending_state(rel), rel.get("version")
    action = params.get("on_pending") or "fail"
    if action == "fail":
        raise HelmError(
            "Helm release %s/%s is %s at revision %s (%s). A helm operation was interrupted or is still running. "
            "If none is running, set on_pending=rollback to roll back to the previous revision, or "
            "on_pending=reinstall to uninstall and install the release again."
            % (namespace, name, state, revision, (rel.get("info") or {}).get("description") or "no description"),
            release_status=state, revision=revision)
    if action == "rollback" and (not revision or revision <= 1):
        raise HelmError("Helm release %s/%s is %s at revision %s: there is no earlier revision to roll back to; "
                        "set on_pending=reinstall" % (namespace, name, state, revision), release_status=state)
    result.update({"changed": True, "pending_action": action, "pending_status": state})
    if check_mode:
        return rel if action == "rollback" else None
    if action == "rollback":
        helm.run(["rollback", name, "-n", namespace] + wait_args(params, helm.version))
        return helm.status(name, namespace)
    helm.run(["uninstall", name, "-n", namespace] + wait_args(params, helm.version))
    return None


def _failed_change(rel):
    """A failed release is upgraded whatever it holds: its last revision never became what was asked."""
    if ((rel or {}).get("info") or {}).get("status") != "failed":
        return []
    return ["failed release (revision %s)" % rel.get("version")]


def manifest_objects(manifest):
    """The objects of a rendered manifest (documents that do not parse are skipped)."""
    objects = []
    for doc in re.split(r"(?m)^---\s*$", manifest or ""):
        try:
            obj = yaml.safe_load(doc)
        except yaml.YAMLError:
            continue
        if isinstance(obj, dict) and obj.get("kind") and (obj.get("metadata") or {}).get("name"):
            objects.append(obj)
    return objects


def _explain_failure(helm, exc, name, namespace, diagnose):
    """helm's error, with the release's state and, per pod of the release that is not ready, why.

    The release's objects come from its manifest (the revision helm just wrote); ``diagnose``
    turns them into lines. Best effort: any trouble reading them leaves helm's own error.
    """
    details = dict(exc.details)
    try:
        rel = helm.status(name, namespace)
        manifest = helm.run(["get", "manifest", name, "-n", namespace], allow_not_found=True) if rel else None
        lines = [scrub(line, helm.secrets) for line in diagnose(manifest_objects(manifest), namespace)] \
            if manifest else []
    except DatastoreError:
        return exc
    msg = exc.msg
    if rel:
        state, revision = (rel.get("info") or {}).get("status"), rel.get("version")
        details.update(release_status=state, revision=revision)
        msg += "; release %s/%s is now %s at revision %s" % (namespace, name, state, revision)
        if state == "failed":
            msg += " (correct the request and run again: a failed release is upgraded)"
    if lines:
        msg += "; pods not ready: " + "; ".join(lines)
    details["not_ready"] = lines
    return HelmError(msg, **details)


def run_release(helm, params, check_mode=False, diff_mode=False, diagnose=None):
    """Make the release match the request (or be gone); returns the module result.

    ``diagnose(objects, namespace)`` returns, for the objects of a release whose wait
    failed, one line per pod that is not ready.
    """
    name, namespace = params["name"], params["namespace"]
    if not is_dns_subdomain(name, 53):
        raise InvalidInput("name", "%r is not a valid release name: at most 53 lower-case letters, digits, '-' and "
                                   "'.', starting and ending with a letter or digit" % (name,))
    if not is_dns_label(namespace):
        raise InvalidInput("namespace", "%r is not a valid namespace name (a DNS-1123 label)" % (namespace,))
    if (params.get("wait_timeout") or 0) < 0:
        raise InvalidInput("wait_timeout", "must be 0 or more, got %s" % params["wait_timeout"])
    paths = params.get("sensitive_values") or []
    result = {"changed": False, "name": name, "namespace": namespace}
    chart = Chart(params) if params.get("state") != "absent" else None
    wanted = merged_values(params) if chart else {}
    secrets = sensitive_leaves(wanted, paths)
    helm.secrets = secrets

    def finish():
        result["helm_invocations"] = helm.invocations
        if helm._version is not None:
            result["helm_version"] = ".".join(str(x) for x in helm.version)
        return result

    rel = helm.status(name, namespace)
    chart_meta = chart.meta if chart is not None and chart.local else None
    if rel is not None and (rel.get("info") or {}).get("status") == "uninstalled":
        rel = None  # history kept after an uninstall: `upgrade --install` installs it again
    if chart is None:
        if rel is None:
            return finish()
        result.update(release_facts(rel))
        result["changed"] = True
        if diff_mode:
            result["diff"] = _diff(rel, "", secrets, name)
        if not check_mode:
            helm.run(["uninstall", name, "-n", namespace] + wait_args(params, helm.version))
            result["status"] = "uninstalled"
        return finish()

    result["chart_values"] = mask_values(wanted, paths)
    if pending_state(rel):
        rel = _handle_pending(helm, rel, params, check_mode, result)
    failed = _failed_change(rel)
    if rel is None:
        changes = ["install"]
    elif chart.local:
        # The digest covers Chart.yaml too, so name and version need no helm call. A failed revision's
        # description is helm's account of the failure, not a digest.
        changes = compare_values(rel, wanted) + ([] if failed else compare_digest(rel, chart))
    else:
        resolved = None
        if not chart.exact_version():
            chart.name, resolved = helm.show_chart_version(chart, params)
        chart_meta = helm.metadata(name, namespace) or {}
        chart_meta = dict(chart_meta, name=chart_meta.get("chart"))
        changes = compare_values(rel, wanted) + compare_chart(chart, chart_meta, resolved)
    changes = failed + changes
    if not changes:
        result.update(release_facts(rel, chart_meta))
        return finish()

    result["changed"] = True
    result["changes"] = changes
    if check_mode and result.get("pending_action"):
        # helm refuses a dry run while the release is pending; report what would be done.
        return finish()
    values_file = write_values_file(wanted)
    try:
        out = helm.run_json(upgrade_args(name, namespace, chart, params, lambda: helm.version, values_file,
                                         dry_run=check_mode))
    except HelmError as exc:
        if check_mode or not (params.get("wait") or params.get("atomic")) or diagnose is None:
            raise
        raise _explain_failure(helm, exc, name, namespace, diagnose)
    finally:
        os.unlink(values_file)
    result.update(release_facts(out))
    if diff_mode:
        result["diff"] = _diff(rel, out.get("manifest"), secrets, name)
    return finish()
