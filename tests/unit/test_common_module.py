"""new_module turns ansible-core's crash on infinite integers into a failure naming the option."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from ansible.module_utils import basic

from ansible_collections.datastore.kubernetes.plugins.module_utils import _common


def _run(args, spec):
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            _common.new_module(spec)
    finally:
        basic._ANSIBLE_ARGS = None
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.parametrize("value", ["inf", "INF", "-Infinity"])
def test_infinite_integer_fails_naming_the_option(value):
    result = _run({"replicas": value, "name": "x"}, {"replicas": {"type": "int"}, "name": {"type": "str"}})
    assert result["failed"] is True
    # ansible-core before 2.18 refuses "inf" itself, naming the option; later ones crash, and new_module steps in.
    assert result["msg"].startswith("replicas:") or result["msg"].startswith("argument 'replicas'"), result["msg"]


def test_ordinary_type_errors_are_ansible_cores():
    result = _run({"replicas": "three"}, {"replicas": {"type": "int"}})
    assert result["failed"] is True and "replicas" in result["msg"]
