"""The test suites' bytecode cache for AnsiballZ imports (tests/tools/bytecode_cache.py): a second import of the same
source from another zip reads the stored code, runs the same, and its tracebacks name the zip it came from."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SOURCE = '''
def answer():
    return 42


def fails():
    raise ValueError("from the zip")
'''

PROBE = '''
import sys, traceback
sys.path.insert(0, {tools!r})
import bytecode_cache
sys.path.insert(0, {zip!r})
import zipped_probe
assert zipped_probe.answer() == 42
try:
    zipped_probe.fails()
except ValueError as error:
    print(traceback.extract_tb(sys.exc_info()[2])[-1].filename, error, sep="|")
'''


def run_probe(tmp_path, run, cache, enabled=True):
    archive = tmp_path / "run{0}".format(run) / "payload.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_probe.py", SOURCE)
    env = dict(os.environ)
    env.pop("SELFMANAGED_EKS_BYTECODE_CACHE", None)
    if enabled:
        env["SELFMANAGED_EKS_BYTECODE_CACHE"] = str(cache)
    code = PROBE.format(tools=str(ROOT / "tests" / "tools"), zip=str(archive))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    filename, message = out.stdout.strip().split("|")
    return archive, filename, message


def test_a_second_import_of_the_same_source_reads_the_stored_code_and_names_its_own_zip(tmp_path):
    cache = tmp_path / "cache"
    first_zip, first_file, first_message = run_probe(tmp_path, 1, cache)
    stored = sorted(cache.iterdir())
    assert len(stored) == 1 and first_file == str(first_zip / "zipped_probe.py") and first_message == "from the zip"

    # The stored entry is what the second run executes: make it recognisably different, same length.
    stored[0].write_bytes(stored[0].read_bytes().replace(b"from the zip", b"from a cache"))
    second_zip, second_file, second_message = run_probe(tmp_path, 2, cache)
    assert second_message == "from a cache" and second_file == str(second_zip / "zipped_probe.py")
    assert sorted(cache.iterdir()) == stored


def test_nothing_is_stored_without_the_variable(tmp_path):
    cache = tmp_path / "cache"
    run_probe(tmp_path, 1, cache, enabled=False)
    assert not cache.exists()
