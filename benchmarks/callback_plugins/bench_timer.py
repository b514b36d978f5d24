# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record when every task starts and ends (and every loop item) into a JSON file.

Used only by the benchmarks, with both the project's and the alternatives'
ansible-core, so a task's time excludes ansible-playbook's own start-up. Enabled
with ANSIBLE_CALLBACKS_ENABLED=bench_timer; the file is BENCH_TIMINGS_FILE.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: Writes task start and end times to a JSON file
description:
  - Writes, for every task, the wall-clock time it started and the time its last result arrived, whether it
    changed or failed, and the time of every loop item, to the file named by E(BENCH_TIMINGS_FILE).
requirements:
  - enabled with C(callbacks_enabled)
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("BENCH_TIMINGS_FILE")
        self._tasks = []
        self._current = None
        self._started = time.time()

    def _start(self, task):
        self._current = {"name": task.get_name(), "action": task.action, "start": time.time(), "end": None,
                         "changed": False, "failed": False, "skipped": False, "items": []}
        self._tasks.append(self._current)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def _result(self, result, failed=False, skipped=False):
        if self._current is None:
            return
        now = time.time()
        res = result._result if hasattr(result, "_result") else {}
        self._current["end"] = now
        self._current["changed"] = self._current["changed"] or bool(res.get("changed"))
        self._current["failed"] = self._current["failed"] or failed
        self._current["skipped"] = skipped
        if failed:
            self._current["msg"] = str(res.get("msg", ""))[:2000]

    def _item(self, result, failed=False):
        if self._current is None:
            return
        res = result._result if hasattr(result, "_result") else {}
        self._current["items"].append({"end": time.time(), "changed": bool(res.get("changed")), "failed": failed})

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, failed=not ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._result(result, failed=True)

    def v2_runner_item_on_ok(self, result):
        self._item(result)

    def v2_runner_item_on_failed(self, result):
        self._item(result, failed=True)

    def v2_playbook_on_stats(self, stats):
        if not self._path:
            return
        with open(self._path, "w", encoding="utf-8") as handle:
            json.dump({"started": self._started, "ended": time.time(), "tasks": self._tasks}, handle)
