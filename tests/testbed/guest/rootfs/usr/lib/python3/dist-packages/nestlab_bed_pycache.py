"""Test bed only: keep the bytecode of modules that Python imports from zip files.

Ansible runs each module from a fresh zip of its module_utils, and Python never caches
the bytecode of zip imports, so every task compiles ansible.module_utils.basic and the
rest anew. Under the bed's emulated CPU that compile is about 40 % of a task. This hook
keeps each compiled module by its source's digest; the code that runs is the same.
Loaded by nestlab_bed_pycache.pth; the bed is disposable, and so is the cache.
"""
import marshal
import os
import sys
import zipimport

CACHE = "/var/cache/nestlab-pycache"
_COMPILE = zipimport._compile_source  # pylint: disable=protected-access


def _relocated(code, filename):
    """The cached code object with its file name (and its functions') set to filename."""
    consts = tuple(_relocated(const, filename) if isinstance(const, type(code)) else const
                   for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile(pathname, source):
    import hashlib  # pylint: disable=import-outside-toplevel
    digest = hashlib.sha256(source).hexdigest()
    path = os.path.join(CACHE, "%s-%s" % (sys.implementation.cache_tag, digest))
    try:
        with open(path, "rb") as cached:
            return _relocated(marshal.loads(cached.read()), pathname)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = _COMPILE(pathname, source)
    try:
        os.makedirs(CACHE, exist_ok=True)
        partial = "%s.%d" % (path, os.getpid())
        with open(partial, "wb") as out:
            out.write(marshal.dumps(code))
        os.replace(partial, path)
    except OSError:
        pass
    return code


zipimport._compile_source = _cached_compile  # pylint: disable=protected-access
