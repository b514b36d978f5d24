"""A module's ``main()`` run inside the test process, through the action plugins' own harness.

Starting a Python interpreter per call costs about 0.4 s; ``_in_process.run_main`` runs
``main()`` in a few milliseconds, which is what lets the bad-input test try hundreds of inputs.
The arguments are encoded, and the process put back afterwards, exactly as when the action
plugin runs a module in Ansible's worker.
"""

from __future__ import annotations

import json
import traceback

from ansible_collections.datastore.kubernetes.plugins.plugin_utils import _core_compat, _in_process

MODULES = "ansible_collections.datastore.kubernetes.plugins.modules."


class InProcessRunner:
    """``runner(name, params, check=False)`` -> the module's result, as Ansible would parse it.

    Anything ``main()`` raises other than ``SystemExit`` is what Ansible would show as a module
    traceback, so it is returned as ``{"failed": True, "_traceback": ...}``. ``_stdout`` and
    ``_stderr`` hold what the module printed.
    """

    def __init__(self, env):
        self.env = env
        self.calls = 0
        runtime, reason = _core_compat.runtime()
        if runtime is None:
            raise RuntimeError("modules cannot run in this process: %s" % reason)
        self.runtime = runtime

    def __call__(self, name, params, check=False):
        pymodule, reason = _in_process.import_module(MODULES + name)
        if pymodule is None:
            raise RuntimeError("module %s cannot run in this process: %s" % (name, reason))
        args = dict(params, _ansible_check_mode=check, _ansible_diff=True, _ansible_verbosity=4)
        self.calls += 1
        try:
            stdout, stderr, _rc = _in_process.run_main(self.runtime, pymodule, self.runtime.encode(args), self.env)
        except Exception:  # pylint: disable=broad-except
            # What Ansible reports as "MODULE FAILURE", with a traceback.
            return {"failed": True, "_traceback": traceback.format_exc(), "_stdout": "", "_stderr": ""}
        try:
            result = json.loads(stdout[stdout.index("{"):])
        except ValueError:
            return {"failed": True, "_traceback": "the module exited without a result", "_stdout": stdout,
                    "_stderr": stderr}
        result["_stdout"], result["_stderr"] = stdout, stderr
        return result
