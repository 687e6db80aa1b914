"""The test suites' run caches (tests/tools/run_cache.py).

- Bytecode: a second import of the same source from another zip reads the stored code, runs the same, and its
  tracebacks name the zip it came from.
- AnsiballZ payloads: a second ansible-playbook run uses the payload the first one built, and a changed module is
  built anew (never a stale payload).
- Routing metadata: a second parse of the same runtime.yml text reads the stored result.
- botocore data files: a second process reads the stored parse of a model; a changed file is parsed anew.
- The last collection: a process skips only the interpreter's last garbage collection; its atexit handlers all run.
"""

import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "tools"))

import run_cache  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
ENV = "SELFMANAGED_EKS_RUN_CACHE"

SOURCE = '''
def answer():
    return 42


def fails():
    raise ValueError("from the zip")
'''

PROBE = '''
import sys, traceback
sys.path.insert(0, {tools!r})
import run_cache
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
    env.pop(ENV, None)
    if enabled:
        env[ENV] = str(cache)
    code = PROBE.format(tools=str(ROOT / "tests" / "tools"), zip=str(archive))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    filename, message = out.stdout.strip().split("|")
    return archive, filename, message


def test_a_second_import_of_the_same_source_reads_the_stored_code_and_names_its_own_zip(tmp_path):
    cache = tmp_path / "cache"
    first_zip, first_file, first_message = run_probe(tmp_path, 1, cache)
    stored = sorted((cache / "bytecode").iterdir())
    assert len(stored) == 1 and first_file == str(first_zip / "zipped_probe.py") and first_message == "from the zip"

    # The stored entry is what the second run executes: make it recognisably different, same length.
    stored[0].write_bytes(stored[0].read_bytes().replace(b"from the zip", b"from a cache"))
    second_zip, second_file, second_message = run_probe(tmp_path, 2, cache)
    assert second_message == "from a cache" and second_file == str(second_zip / "zipped_probe.py")
    assert sorted((cache / "bytecode").iterdir()) == stored


def test_nothing_is_stored_without_the_variable(tmp_path):
    cache = tmp_path / "cache"
    run_probe(tmp_path, 1, cache, enabled=False)
    assert not cache.exists()


MODULE = '''#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.probe.cache.plugins.module_utils.word import WORD


def main():
    module = AnsibleModule(argument_spec={})
    module.exit_json(changed=False, word=WORD, pid=__import__("os").getpid())


if __name__ == "__main__":
    main()
'''

PLAY = '''
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: probe
      probe.cache.say: {}
      register: said
    - name: word
      ansible.builtin.debug:
        msg: "WORD={{ said.word }}"
'''


def write_collection(root, word):
    collection = root / "ansible_collections" / "probe" / "cache"
    (collection / "plugins" / "modules").mkdir(parents=True, exist_ok=True)
    (collection / "plugins" / "module_utils").mkdir(parents=True, exist_ok=True)
    (collection / "galaxy.yml").write_text("namespace: probe\nname: cache\nversion: 1.0.0\n")
    (collection / "plugins" / "modules" / "say.py").write_text(MODULE)
    (collection / "plugins" / "module_utils" / "word.py").write_text("WORD = {0!r}\n".format(word))


def play(tmp_path, cache):
    env = dict(os.environ)
    env.update(
        {
            ENV: str(cache),
            "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(tmp_path / "play.yml")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.split('"msg": "WORD=', 1)[1].split('"', 1)[0]


def tamper(payload, word):
    """Rewrite the word module_util inside a stored payload (ansible-core's pickled _CachedModule)."""
    import base64
    import dataclasses
    import io
    import pickle

    cached = pickle.loads(payload.read_bytes())
    source = zipfile.ZipFile(io.BytesIO(base64.b64decode(cached.zip_data)))
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("module_utils/word.py"):
                data = "WORD = {0!r}\n".format(word).encode()
            target.writestr(info, data)
    payload.write_bytes(pickle.dumps(dataclasses.replace(cached, zip_data=base64.b64encode(rewritten.getvalue()))))


def payloads(cache):
    return sorted(path for path in (cache / "ansiballz").glob("*/*say*") if not path.name.endswith(".lock"))


def test_a_payload_is_built_once_and_a_changed_module_util_gets_a_new_one(tmp_path):
    # ansible-playbook loads the copy `make venv` installed next to its .pth line: it must be this file.
    import sysconfig

    installed = Path(sysconfig.get_paths()["purelib"]) / "_selfmanaged_eks_run_cache.py"
    assert installed.read_text() == (ROOT / "tests" / "tools" / "run_cache.py").read_text(), "run make venv first"
    cache = tmp_path / "cache"
    (tmp_path / "play.yml").write_text(PLAY)
    write_collection(tmp_path / "collections", "first")

    assert play(tmp_path, cache) == "first"
    built = payloads(cache)
    assert len(built) == 1

    # A second run uses the stored payload: make its module_util recognisably different, and the run says so.
    tamper(built[0], "cached")
    assert play(tmp_path, cache) == "cached"
    assert payloads(cache) == built

    # A changed module_util (same size: only its modification time tells) is a new fingerprint and a new payload.
    word = tmp_path / "collections" / "ansible_collections" / "probe" / "cache" / "plugins" / "module_utils" / "word.py"
    before = word.stat()
    word.write_text("WORD = {0!r}\n".format("again"))
    os.utime(word, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert play(tmp_path, cache) == "again"
    assert len(payloads(cache)) == 2


def test_the_fingerprint_follows_a_checkouts_plugins_and_an_installed_collections_manifest(tmp_path):
    write_collection(tmp_path / "checkout", "one")
    installed = tmp_path / "site" / "ansible_collections" / "other" / "thing"
    (installed / "plugins" / "modules").mkdir(parents=True)
    (installed / "MANIFEST.json").write_text("{}")
    roots = [str(tmp_path / "checkout"), str(tmp_path / "site")]
    first = run_cache.collections_fingerprint(roots, "2.19.0")
    assert run_cache.collections_fingerprint(roots, "2.19.0") == first
    assert run_cache.collections_fingerprint(roots, "2.19.1") != first

    # An installed collection's files are not walked (only its MANIFEST.json counts) ...
    (installed / "plugins" / "modules" / "new.py").write_text("")
    assert run_cache.collections_fingerprint(roots, "2.19.0") == first
    # ... a checkout's are.
    (tmp_path / "checkout" / "ansible_collections" / "probe" / "cache" / "plugins" / "modules" / "new.py").write_text("")
    assert run_cache.collections_fingerprint(roots, "2.19.0") != first


def test_routing_metadata_is_parsed_once_per_text(tmp_path):
    calls = []

    def parse(data, content_id):
        calls.append(content_id)
        return {"plugin_routing": {"modules": {"old": {"redirect": "probe.cache.new"}}}}

    module = types.SimpleNamespace(_meta_yml_to_dict=parse)
    run_cache._patch_collection_meta(module, str(tmp_path))
    text = b"plugin_routing:\n  modules:\n    old:\n      redirect: probe.cache.new\n"
    first = module._meta_yml_to_dict(text, ("probe.cache", "runtime.yml"))
    second = module._meta_yml_to_dict(text, ("probe.cache", "runtime.yml"))
    assert first == second == parse(None, None)
    assert calls == [("probe.cache", "runtime.yml"), None]  # the second read came from the store
    module._meta_yml_to_dict(text + b"\n# another text\n", ("probe.cache", "runtime.yml"))
    assert len(calls) == 3


BOTOCORE_PROBE = '''
import json, sys
from botocore import loaders, session
data = loaders.JSONFileLoader().load_file({path!r})
services = session.get_session().get_component("data_loader").list_available_services("service-2")
print(json.dumps({{"data": data, "services": services}}))
'''


def load_with_botocore(path, cache):
    env = dict(os.environ)
    env.pop(ENV, None)
    if cache:
        env[ENV] = str(cache)
    code = "import sys; sys.path.insert(0, {0!r}); import run_cache\n".format(str(ROOT / "tests" / "tools")) + BOTOCORE_PROBE.format(path=str(path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout)


def test_botocore_data_files_are_parsed_once_per_file_and_a_changed_file_anew(tmp_path):
    import pickle

    cache = tmp_path / "cache"
    model = tmp_path / "probe" / "service-2"
    model.parent.mkdir()
    model.with_suffix(".json").write_text('{"metadata": {"serviceId": "Probe"}}')
    first = load_with_botocore(model, cache)
    assert first["data"] == {"metadata": {"serviceId": "Probe"}}
    # The service list is botocore's own, the same as parsed without the cache.
    assert first["services"] == load_with_botocore(model, None)["services"] and "eks" in first["services"]

    # The stored parse is what the second process gets: make it recognisably different.
    stored = [path for path in (cache / "botocore").iterdir() if pickle.loads(path.read_bytes()) == first["data"]]
    assert len(stored) == 1
    stored[0].write_bytes(pickle.dumps({"metadata": {"serviceId": "Cached"}}))
    assert load_with_botocore(model, cache)["data"] == {"metadata": {"serviceId": "Cached"}}

    # A changed file (same size: only its modification time tells) is parsed anew.
    path = model.with_suffix(".json")
    before = path.stat()
    path.write_text('{"metadata": {"serviceId": "Again"}}')
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert load_with_botocore(model, cache)["data"] == {"metadata": {"serviceId": "Again"}}


EXIT_PROBE = '''
import atexit, gc, sys
sys.path.insert(0, {tools!r})
import run_cache


class InACycle:
    def __del__(self):
        print("finalized", flush=True)


gc.collect()
atexit.register(print, "atexit handler ran", flush=True)
cycle = InACycle()
cycle.itself = cycle
del cycle
'''


def exit_output(cache):
    env = dict(os.environ)
    env.pop(ENV, None)
    if cache:
        env[ENV] = str(cache)
    code = EXIT_PROBE.format(tools=str(ROOT / "tests" / "tools"))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()


def test_a_process_skips_only_its_last_collection_and_every_atexit_handler_still_runs(tmp_path):
    # As users run: the interpreter's last pass finalizes the object left in a cycle, after the atexit handlers.
    assert exit_output(None) == ["atexit", "handler", "ran", "finalized"]
    # With the run cache: the handlers run, and the last pass has nothing to traverse.
    assert exit_output(tmp_path / "cache") == ["atexit", "handler", "ran"]
