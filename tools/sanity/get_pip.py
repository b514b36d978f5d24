"""Bootstrap pip into an empty virtual environment, for ansible-test.

ansible-test creates its sanity virtual environments without pip and fetches a pip
bootstrap script from a download site outside the package registries. This
stand-in does the same job with what Python ships (ensurepip) and the package
index: it is called with pip's install options and the packages to install.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
