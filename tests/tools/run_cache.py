"""Caches that spare the test suites' Ansible runs work they repeat identically, for the test suites only.

`make test` starts ~400 ansible-playbook runs and thousands of module runs on 2 cores, and each one repeated work
whose result cannot differ from the run before:

- **Bytecode of AnsiballZ imports.** A module run imports `ansible.module_utils`, amazon.aws's and our module_utils
  and the module from its AnsiballZ zip with zipimport, which compiles each source anew: Python writes no .pyc for
  code imported from a zip (~0.2 s of CPU per module run). The code object of a source is stored under the hash of
  the Python version, the file's path inside the zip and its source. Code objects are given back the file name of
  the zip they were imported from (tracebacks name the real file).
- **The AnsiballZ payloads.** ansible-core builds a module's payload (it parses every module_util the module
  imports, recursively, and zips them: ~0.4 s for one of ours) once per ansible-playbook process, into a cache
  directory inside the process's own temporary directory. Here that directory is a link to a shared one, so a
  payload is built once per content of the collections it is built from: the shared directory is named by a
  fingerprint of ansible-core's version and of the files of every collection on the collections path (every file
  under `plugins/` and `meta/` of a checkout, the MANIFEST.json of an installed collection). Changing a module or a
  module_util gives a new fingerprint, so a stale payload is never used. ansible-core's own lock and atomic
  rename guard the shared files, as they guard the forks of one run.
- **Collection routing metadata.** Every process parses the `meta/runtime.yml` of ansible-core and of the
  collections it touches (~0.1 s: ansible.builtin's alone is thousands of lines). ansible-core passes this parse
  through a function it documents as one tools may replace to cache its output; its result (plain strings, lists
  and dicts) is stored under the hash of the YAML text.
- **botocore's data files.** Every AWS module run creates its boto3 clients, and botocore parses the JSON of each
  client's service model, of its endpoints and partitions (ec2's model alone: ~0.1 s), and lists the ~440 services
  it has data for. A parse is stored pickled under the hash of the file's path, size and modification time; the list
  under botocore's version (it is made anew when a user's own models exist under another search path).
- **The last garbage collection of a process.** When a Python process exits, the interpreter runs the cyclic
  garbage collector over every object still alive before it frees them. A module run's heap holds botocore's parsed
  service models: this last pass cost ~0.08 s of CPU per AWS module run (20 module runs: 9.3 -> 7.7 CPU-s,
  measured), for memory the operating system frees with the process anyway. The heap is frozen (`gc.freeze()`) as
  a process's very last atexit step, after every handler its code registered (ansible's removal of a module's
  temporary directory among them), so the last pass has nothing to traverse. The one difference: an object that is
  part of a reference cycle still alive at exit is not finalized (its `__del__` does not run); code that must clean
  up at exit registers an atexit handler, and those all run.

What runs is the same code on the same data; only repeated work is skipped. Installed into the test virtualenv by
the Makefile (this file as `_selfmanaged_eks_run_cache.py` plus a .pth line that imports it), it does nothing unless
SELFMANAGED_EKS_RUN_CACHE names a directory, which the Makefile and the integration conftest set. Users' runs never
load it.
"""

import os
import sys

ENV = "SELFMANAGED_EKS_RUN_CACHE"


def _store(path, data):
    """Write `data` to `path` atomically (readers see the whole file or none); errors only cost the cache."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = "{0}.{1}".format(path, os.getpid())
        with open(partial, "wb") as stored:
            stored.write(data)
        os.replace(partial, path)
    except OSError:
        pass


def _stored_or(path, compute, loads, dumps):
    """What `path` holds, read with `loads`; else `compute()`, stored with `dumps` for the next process (None, or a
    result `dumps` refuses with ValueError, is returned unstored). A missing, partial or foreign file only costs the
    computation."""
    try:
        with open(path, "rb") as stored:
            return loads(stored.read())
    except Exception:  # noqa: BLE001 - whatever a stored file holds, the computation is the answer
        pass
    result = compute()
    if result is not None:
        try:
            data = dumps(result)
        except ValueError:
            return result
        _store(path, data)
    return result


def _retarget(code, filename):
    consts = tuple(_retarget(const, filename) if isinstance(const, type(code)) else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def install_bytecode(directory):
    import hashlib
    import marshal
    import zipimport

    compile_source = zipimport._compile_source
    tag = (sys.implementation.cache_tag or sys.version).encode()

    def cached_compile(pathname, source):
        inner = pathname.split(".zip" + os.sep, 1)[-1]
        key = hashlib.sha256(tag + b"\0" + inner.encode() + b"\0" + source).hexdigest()
        return _stored_or(os.path.join(directory, key), lambda: compile_source(pathname, source),
                          lambda data: _retarget(marshal.loads(data), pathname), marshal.dumps)

    zipimport._compile_source = cached_compile


def collections_fingerprint(roots, version):
    """A hash of what an AnsiballZ payload can be built from: the ansible-core `version`, and for each
    `ansible_collections` tree under `roots`, every file of a checkout's `plugins/` and `meta/` (path, size,
    modification time) and an installed collection's MANIFEST.json (pip replaces it with the collection)."""
    import hashlib

    digest = hashlib.sha256(str(version).encode())
    for root in roots:
        tree = os.path.join(root, "ansible_collections")
        try:
            namespaces = sorted(os.listdir(tree))
        except OSError:
            continue
        for namespace in namespaces:
            try:
                names = sorted(os.listdir(os.path.join(tree, namespace)))
            except OSError:
                continue
            for name in names:
                collection = os.path.join(tree, namespace, name)
                manifest = os.path.join(collection, "MANIFEST.json")
                if os.path.isfile(manifest):
                    files = [manifest]
                else:
                    files = []
                    for part in ("plugins", "meta"):
                        for folder, dirs, found in os.walk(os.path.join(collection, part)):
                            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                            files.extend(os.path.join(folder, f) for f in sorted(found))
                for path in files:
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    digest.update("{0}\0{1}\0{2}\n".format(path, st.st_size, st.st_mtime_ns).encode())
    return digest.hexdigest()[:24]


def _patch_module_common(module, directory):
    """Route ansible-core's per-process AnsiballZ cache directory to a shared one named by the fingerprint."""
    find_module_utils = module._find_module_utils
    linked = []

    def shared_payload_cache(**kwargs):
        if not linked:
            linked.append(True)
            try:
                from ansible import constants as C
                from ansible import release
                from ansible.utils.collection_loader import AnsibleCollectionConfig

                roots = list(AnsibleCollectionConfig.collection_paths)
                shared = os.path.join(directory, "ansiballz", collections_fingerprint(roots, release.__version__))
                os.makedirs(shared, exist_ok=True)
                os.symlink(shared, os.path.join(C.DEFAULT_LOCAL_TMP, "ansiballz_cache"))
            except OSError:
                pass  # a fork of this run linked it first, or no link: the run builds its payloads itself
        return find_module_utils(**kwargs)

    module._find_module_utils = shared_payload_cache


def _patch_collection_meta(module, directory):
    import hashlib
    import marshal

    meta_yml_to_dict = module._meta_yml_to_dict

    def cached_meta_yml_to_dict(yaml_string_data, content_id):
        raw = yaml_string_data if isinstance(yaml_string_data, bytes) else str(yaml_string_data).encode("utf-8", "surrogateescape")
        # marshal refuses what is not plain data: such a result is not stored
        return _stored_or(os.path.join(directory, "meta", hashlib.sha256(raw).hexdigest()),
                          lambda: meta_yml_to_dict(yaml_string_data, content_id), marshal.loads, marshal.dumps)

    module._meta_yml_to_dict = cached_meta_yml_to_dict


def _patch_botocore_loaders(module, directory):
    """botocore's JSON data files (service models, endpoints, partitions) parsed once, and its list of the services
    it has data for made once."""
    import hashlib
    import pickle

    load_file = module.JSONFileLoader._load_file
    list_available_services = module.Loader.list_available_services
    own_data = os.path.join(os.path.dirname(module.__file__), "data")

    def cached(key, compute):
        path = os.path.join(directory, "botocore", hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest())
        return _stored_or(path, compute, pickle.loads, lambda data: pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))

    def cached_load_file(self, full_path, open_method):
        try:
            st = os.stat(full_path)
        except OSError:
            return load_file(self, full_path, open_method)
        key = "file\0{0}\0{1}\0{2}\0{3}".format(sys.version, full_path, st.st_size, st.st_mtime_ns)
        return cached(key, lambda: load_file(self, full_path, open_method))

    def cached_list_available_services(self, type_name):
        # Only botocore's own data (it changes with botocore's version); models a user added under another search
        # path (~/.aws/models) are listed anew.
        if any(path != own_data and os.path.isdir(path) for path in self.search_paths):
            return list_available_services(self, type_name)
        key = "services\0{0}\0{1}\0{2}\0{3}\0{4}".format(
            sys.version, getattr(sys.modules.get("botocore"), "__version__", ""), own_data, os.stat(own_data).st_mtime_ns, type_name)
        return cached(key, lambda: list_available_services(self, type_name))

    cached_list_available_services.__name__ = "list_available_services"
    module.JSONFileLoader._load_file = cached_load_file
    module.Loader.list_available_services = module.instance_cache(cached_list_available_services)


class _PatchAfterImport:
    """A meta path finder that lets the real finders load a module, then patches it before anyone imports from it."""

    def __init__(self, patches):
        self.patches = patches

    def find_spec(self, name, path=None, target=None):
        patch = self.patches.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            if hasattr(spec.loader, "exec_module"):
                exec_module = spec.loader.exec_module

                def exec_and_patch(module, exec_module=exec_module, patch=patch):
                    exec_module(module)
                    patch(module)

                spec.loader.exec_module = exec_and_patch
            return spec
        return None


def skip_the_last_collection():
    """Freeze the heap as this process's last atexit step (registered first, atexit handlers run last in first out)."""
    import atexit
    import gc

    atexit.register(gc.freeze)


def install(directory):
    if getattr(sys, "_selfmanaged_eks_run_cache", None):
        return  # installed already (the .pth line ran, and a test imports this file again)
    sys._selfmanaged_eks_run_cache = directory
    skip_the_last_collection()
    install_bytecode(os.path.join(directory, "bytecode"))
    sys.meta_path.insert(
        0,
        _PatchAfterImport(
            {
                "ansible.executor.module_common": lambda module: _patch_module_common(module, directory),
                "ansible.utils.collection_loader._collection_meta": lambda module: _patch_collection_meta(module, directory),
                "botocore.loaders": lambda module: _patch_botocore_loaders(module, directory),
            }
        ),
    )


def measure_as_users_run():
    """For the benchmarks: the Ansible runs this process starts run as users' do, without these caches ("" switches
    them off where `make` and the integration helpers would switch them on)."""
    os.environ[ENV] = ""


if os.environ.get(ENV):
    install(os.environ[ENV])
