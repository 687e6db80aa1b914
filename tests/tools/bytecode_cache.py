"""A bytecode cache for the code Ansible's modules import from their AnsiballZ zip, for the test suites only.

Every module run unpacks a fresh AnsiballZ zip and imports `ansible.module_utils`, amazon.aws's and our module_utils
and the module itself from it with zipimport, which compiles each source file anew: Python writes no .pyc for code
imported from a zip. That is 0.2 to 0.3 s of CPU per module run (ansible.module_utils.basic alone ~0.17 s), a third
of it, and `make test` runs thousands of modules on 2 cores.

Installed into the test virtualenv by the Makefile (this file as `_selfmanaged_eks_bytecode_cache.py` plus a .pth
line that imports it), it does nothing unless SELFMANAGED_EKS_BYTECODE_CACHE names a directory. Then it wraps
zipimport's compile step: the code object of a source file is stored under the hash of the Python version, the
file's path inside the zip and its source, and read back by the next module run that imports the same source. The
code that runs is the same; only the compile is skipped. Code objects are given back the file name of the zip they
were imported from (tracebacks name the real file). Users' module runs never load this.
"""

import os

ENV = "SELFMANAGED_EKS_BYTECODE_CACHE"


def _retarget(code, filename):
    consts = tuple(_retarget(const, filename) if isinstance(const, type(code)) else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def install(directory):
    import hashlib
    import marshal
    import sys
    import zipimport

    compile_source = zipimport._compile_source
    tag = (sys.implementation.cache_tag or sys.version).encode()

    def cached_compile(pathname, source):
        inner = pathname.split(".zip" + os.sep, 1)[-1]
        key = hashlib.sha256(tag + b"\0" + inner.encode() + b"\0" + source).hexdigest()
        path = os.path.join(directory, key)
        try:
            with open(path, "rb") as stored:
                return _retarget(marshal.loads(stored.read()), pathname)
        except (OSError, ValueError, EOFError, TypeError):
            pass
        code = compile_source(pathname, source)
        try:
            os.makedirs(directory, exist_ok=True)
            partial = "{0}.{1}".format(path, os.getpid())
            with open(partial, "wb") as stored:
                stored.write(marshal.dumps(code))
            os.replace(partial, path)
        except OSError:
            pass
        return code

    zipimport._compile_source = cached_compile


if os.environ.get(ENV):
    install(os.environ[ENV])
