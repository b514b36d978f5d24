# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many calls on a bounded number of threads: the batching behind bulk applies, deletes and waits.

The threads share the caller's client, and with it one connection pool (``_kube.POOL_MAXSIZE``).
"""

from __future__ import annotations

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import DatastoreError


def run_batch(func: Callable[..., Any], args_list: Sequence[Sequence[Any]], concurrency: int,
              keep_going: bool = False) -> list[tuple[bool, Any]]:
    """``func(*args)`` for each entry of ``args_list``; their outcomes in input order.

    An outcome is ``(True, value)`` or ``(False, exception)``. With more than one entry and a
    ``concurrency`` above 1, up to ``concurrency`` calls run at once and every call runs to its end,
    whatever the others do. One after another, the first failure ends the batch by propagating,
    unless ``keep_going``: then the collection's own errors (``DatastoreError``) are kept as outcomes
    and the next call runs, while anything else still propagates at once.
    """
    if not args_list:
        return []
    outcomes: list[tuple[bool, Any]] = []
    if concurrency <= 1 or len(args_list) == 1:
        for args in args_list:
            if not keep_going:
                outcomes.append((True, func(*args)))
                continue
            try:
                outcomes.append((True, func(*args)))
            except DatastoreError as exc:
                outcomes.append((False, exc))
        return outcomes
    with ThreadPoolExecutor(max_workers=min(concurrency, len(args_list))) as pool:
        futures = [pool.submit(func, *args) for args in args_list]
        for fut in futures:
            try:
                outcomes.append((True, fut.result()))
            except Exception as exc:  # pylint: disable=broad-except
                outcomes.append((False, exc))  # the caller decides what each failure means
    return outcomes
