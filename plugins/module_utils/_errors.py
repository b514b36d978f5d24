# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed exceptions shared by every module.

Helpers raise these; a module's ``main()`` catches ``DatastoreError`` once and turns
it into a single ``fail_json``. Messages must never carry secret values.
"""

from __future__ import annotations

__metaclass__ = type

from typing import Any, Iterable


class DatastoreError(Exception):
    """Base of every error the collection raises on purpose."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def to_fail_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``module.fail_json``."""
        kwargs = {"msg": self.msg}
        kwargs.update(self.details)
        return kwargs


class InvalidInput(DatastoreError):
    """Bad module input, found before anything is written."""

    def __init__(self, field: str, msg: str, **details: Any) -> None:
        super().__init__("%s: %s" % (field, msg), field=field, **details)
        self.field = field


class KubeApiError(DatastoreError):
    """A request to the Kubernetes API server failed."""

    def __init__(self, msg: str, status: int | None = None, reason: str | None = None,
                 causes: list[dict[str, Any]] | None = None, **details: Any) -> None:
        super().__init__(msg, status=status, reason=reason, **details)
        self.status = status
        self.reason = reason
        self.causes = causes or []


class NotFound(KubeApiError):
    """The object (or its kind) does not exist."""


class Conflict(KubeApiError):
    """409: a field-manager conflict or an optimistic-concurrency clash."""


class TransientError(KubeApiError):
    """The API server was unreachable or overloaded after all retries."""


class ImmutableField(DatastoreError):
    """A field that cannot change in place was changed."""

    def __init__(self, msg: str, fields: Iterable[str] | None = None, **details: Any) -> None:
        super().__init__(msg, immutable_fields=list(fields or []), **details)
        self.fields = list(fields or [])


class WaitTimeout(DatastoreError):
    """A wait ran out of time; ``details['not_ready']`` says what is missing."""


class WaitFailed(DatastoreError):
    """A wait ended because the object reached a terminal failure (a Job failed)."""


class VaultError(DatastoreError):
    """A request to Vault / OpenBao failed."""


class HelmError(DatastoreError):
    """A helm command failed or a release is in a state that needs attention."""


class ExecError(DatastoreError):
    """A command could not be run in a pod's container, or its stream broke.

    ``details`` name the pod and container. A command that ran and exited non-zero is not
    an error here: its exit code is part of the result.
    """


class ExecTimeout(ExecError):
    """A command run in a pod did not finish in time."""
