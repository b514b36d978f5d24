# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What running a module inside the worker needs from ansible-core, looked up per release.

A module process gets its arguments, and hands back its result, through ansible-core
code that is not public API and that changed with almost every release: how arguments
are encoded (2.19 brought serialization profiles), where ``AnsibleModule`` reads them,
how warnings are collected (lists before 2.19, dicts since), how the printed result is
parsed and cleaned (a dict until 2.20, a ``UnifiedTaskResult`` since 2.21).

``runtime()`` looks each of those names up once, without importing anything that may
be missing at the top of a module, and returns either a ``Runtime`` that knows the
calls of this release or the reason the worker cannot be used. The action plugin then
runs the module as a module process: a release that renames something degrades to the
ordinary path, never to a failed task. Only the release lines in ``TESTED_LINES`` use
the worker at all; each of them runs the collection's tests with it (``make compat``).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json

# Release lines whose worker path the test suite has run. A newer line uses module
# processes until its tests have run and it is added here.
TESTED_LINES = ((2, 16), (2, 17), (2, 18), (2, 19), (2, 20), (2, 21))

# Our modules declare no serialization metadata, so ansible-core 2.19+ uses this profile.
PROFILE = "legacy"


class Unsupported(Exception):
    """A name this release lacks or a shape it does not have; the message says which."""


def _attr(module_name, name):
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # pylint: disable=broad-except
        raise Unsupported("cannot import %s (%s)" % (module_name, exc.__class__.__name__)) from None
    if not hasattr(module, name):
        raise Unsupported("%s has no %s" % (module_name, name))
    return getattr(module, name)


def core_version():
    """``(major, minor)`` of the running ansible-core."""
    version = str(_attr("ansible.release", "__version__"))
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        raise Unsupported("cannot read the ansible-core version %r" % version) from None


class Runtime:
    """The calls of one family of ansible-core releases around a module run in the worker."""

    # The type of module_utils' warning and deprecation collections, and the globals of
    # ansible.module_utils.basic that hold a module's arguments.
    collection_type = list
    basic_names = ("_ANSIBLE_ARGS",)

    def __init__(self):
        self.basic = importlib.import_module("ansible.module_utils.basic")
        if not hasattr(self.basic, "_ANSIBLE_ARGS"):
            raise Unsupported("ansible.module_utils.basic has no _ANSIBLE_ARGS")
        self.warnings = importlib.import_module("ansible.module_utils.common.warnings")
        for name in ("_global_warnings", "_global_deprecations"):
            if not isinstance(getattr(self.warnings, name, None), self.collection_type):
                raise Unsupported("ansible.module_utils.common.warnings.%s is not a %s"
                                  % (name, self.collection_type.__name__))

    def encode(self, module_args):
        raise NotImplementedError

    @contextlib.contextmanager
    def module_globals(self, encoded):
        """``module_utils`` as a module process sees it: its arguments, no warnings yet; restored after."""
        # pylint: disable=protected-access
        saved = [(name, getattr(self.basic, name)) for name in self.basic_names]
        collected = (self.warnings._global_warnings, self.warnings._global_deprecations)
        saved_collected = [self.collection_type(items) for items in collected]
        for items in collected:
            items.clear()
        self._enter(encoded)
        try:
            yield
        finally:
            self._leave()
            for name, value in saved:
                setattr(self.basic, name, value)
            for items, before in zip(collected, saved_collected):
                items.clear()
                if isinstance(items, dict):
                    items.update(before)
                else:
                    items.extend(before)

    def _enter(self, encoded):
        self.basic._ANSIBLE_ARGS = encoded  # pylint: disable=protected-access

    def _leave(self):
        pass

    def result(self, action, stdout, stderr, rc):
        """The task result from what the module printed, as ``_execute_module`` would return it."""
        raise NotImplementedError


def _stdout_lines(data):
    for name in ("stdout", "stderr"):
        if name in data and name + "_lines" not in data:
            data[name + "_lines"] = (data.get(name) or "").splitlines()
    return data


class LegacyRuntime(Runtime):
    """ansible-core 2.16 to 2.18: JSON arguments, list warnings, dict results wrapped as unsafe."""

    def __init__(self):
        super().__init__()
        self.encoder = _attr("ansible.module_utils.common.json", "AnsibleJSONEncoder")
        self.remove_internal_keys = _attr("ansible.vars.clean", "remove_internal_keys")
        self.wrap_var = _attr("ansible.utils.unsafe_proxy", "wrap_var")

    def encode(self, module_args):
        return json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=self.encoder, vault_to_text=True).encode("utf-8")

    def result(self, action, stdout, stderr, rc):
        # pylint: disable=protected-access
        data = action._parse_returned_data({"stdout": stdout, "stderr": stderr, "rc": rc})
        data.pop("_ansible_suppress_tmpdir_delete", None)
        self.remove_internal_keys(data)
        return self.wrap_var(_stdout_lines(data))


class ProfileRuntime(Runtime):
    """ansible-core 2.19 and later: serialization profiles, dict warnings, ``is_controller``."""

    collection_type = dict
    basic_names = ("_ANSIBLE_ARGS", "_ANSIBLE_PROFILE", "_PARSED_MODULE_ARGS")

    def __init__(self, returns_unified_result):
        super().__init__()
        for name in self.basic_names:
            if not hasattr(self.basic, name):
                raise Unsupported("ansible.module_utils.basic has no %s" % name)
        get_encoder = _attr("ansible.module_utils.common.json", "get_module_encoder")
        direction = getattr(_attr("ansible.module_utils.common.json", "Direction"), "CONTROLLER_TO_MODULE", None)
        if direction is None:
            raise Unsupported("ansible.module_utils.common.json.Direction has no CONTROLLER_TO_MODULE")
        try:
            self.encoder = get_encoder(PROFILE, direction)
        except Exception as exc:  # pylint: disable=broad-except
            raise Unsupported("no module encoder for the %s profile (%s)" % (PROFILE, exc)) from None
        self.internal = importlib.import_module("ansible.module_utils._internal")
        if not isinstance(getattr(self.internal, "is_controller", None), bool):
            raise Unsupported("ansible.module_utils._internal has no is_controller flag")
        self.unified = returns_unified_result
        if returns_unified_result:
            result_type = _attr("ansible._internal._task", "UnifiedTaskResult")
            for name in ("remove_internal_keys", "as_result_dict"):
                if not callable(getattr(result_type, name, None)):
                    raise Unsupported("UnifiedTaskResult has no %s" % name)
            self.remove_internal_keys = None
        else:
            self.remove_internal_keys = _attr("ansible.vars.clean", "remove_internal_keys")
        self._was_controller = None

    def encode(self, module_args):
        return json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=self.encoder).encode("utf-8")

    def _enter(self, encoded):
        # pylint: disable=protected-access
        self.basic._ANSIBLE_ARGS, self.basic._ANSIBLE_PROFILE = encoded, PROFILE
        self.basic._PARSED_MODULE_ARGS = None
        # module_utils then collects warnings into the result instead of displaying them.
        self._was_controller = self.internal.is_controller
        self.internal.is_controller = False

    def _leave(self):
        self.internal.is_controller = self._was_controller

    def result(self, action, stdout, stderr, rc):
        # pylint: disable=protected-access
        res = {"stdout": stdout, "stdout_lines": stdout.splitlines(), "stderr": stderr,
               "stderr_lines": stderr.splitlines(), "rc": rc}
        parsed = action._parse_returned_data(res, PROFILE)
        if isinstance(parsed, dict):
            parsed.pop("_ansible_suppress_tmpdir_delete", None)
            self.remove_internal_keys(parsed)
            return _stdout_lines(parsed)
        parsed.remove_internal_keys()
        return parsed.as_result_dict(for_round_trip=True)


def _parse_parameters():
    """Parameters of ``ActionBase._parse_returned_data`` after ``self``, and its return annotation."""
    action_base = _attr("ansible.plugins.action", "ActionBase")
    method = getattr(action_base, "_parse_returned_data", None)
    if method is None:
        raise Unsupported("ActionBase has no _parse_returned_data")
    signature = inspect.signature(method)
    return [name for name in signature.parameters if name != "self"], str(signature.return_annotation)


def detect():
    """A ``Runtime`` for the running ansible-core; raises ``Unsupported`` saying why there is none."""
    version = core_version()
    if version not in TESTED_LINES:
        raise Unsupported("ansible-core %d.%d is not one of the releases the worker path was tested on (%s)" % (
            version + (", ".join("%d.%d" % line for line in TESTED_LINES),)))
    parameters, returns = _parse_parameters()
    if parameters == ["res"]:
        return LegacyRuntime()
    if parameters == ["res", "profile"]:
        return ProfileRuntime(returns_unified_result="UnifiedTaskResult" in returns)
    raise Unsupported("ActionBase._parse_returned_data takes (%s)" % ", ".join(parameters))


_DETECTED = []


def runtime():
    """``(Runtime, None)``, or ``(None, reason)`` when modules must run as module processes."""
    if not _DETECTED:
        try:
            _DETECTED.append((detect(), None))
        except Unsupported as exc:
            _DETECTED.append((None, str(exc)))
        except Exception as exc:  # pylint: disable=broad-except
            # Anything else unexpected in a release we do not know: the module process is always safe.
            _DETECTED.append((None, "ansible-core internals not as expected (%s: %s)" % (exc.__class__.__name__, exc)))
    return _DETECTED[0]
