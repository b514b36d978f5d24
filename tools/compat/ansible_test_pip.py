"""Print the pip version this venv's ansible-test bootstraps into its test environments."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-error

print(get_venv_packages(SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"])
