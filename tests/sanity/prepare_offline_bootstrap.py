"""Let `ansible-test sanity --local` bootstrap pip without its usual download.

ansible-test fetches `get-pip-<version>.py` from a host that is not reachable here and
caches it as ~/.ansible/test/cache/get_pip_<version>.py. This writes a stand-in at that
path which runs pip from the official pip wheel on PyPI (downloaded once, next to it).
Idempotent; run by `make sanity`.
"""

import re
import subprocess
import sys
from pathlib import Path

import ansible_test

CACHE = Path.home() / ".ansible" / "test" / "cache"

STANDIN = '''"""Stand-in for get-pip.py written by selfmanaged.eks's tests/sanity/prepare_offline_bootstrap.py."""
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WHEEL = os.path.join(HERE, "{wheel}")
# get-pip.py options that pip itself does not know.
ARGS = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.path.insert(0, WHEEL)
sys.argv = ["pip", "install"] + ARGS
runpy.run_module("pip", run_name="__main__", alter_sys=True)
'''


def wanted_pip_version():
    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = re.search(r"pip='([0-9.]+)'", source.read_text())
    if not match:
        sys.exit("cannot find the pip version ansible-test bootstraps in {0}".format(source))
    return match.group(1)


def main():
    version = wanted_pip_version()
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = "pip-{0}-py3-none-any.whl".format(version)
    if not (CACHE / wheel).exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(CACHE), "pip=={0}".format(version)],
            check=True,
        )
    script = CACHE / "get_pip_{0}.py".format(version.replace(".", "_"))
    content = STANDIN.format(wheel=wheel)
    if not script.exists() or script.read_text() != content:
        script.write_text(content)
    print("ansible-test pip bootstrap: {0} (pip {1} from PyPI)".format(script, version))


if __name__ == "__main__":
    main()
