"""Build script for pssh.

The optional C extension ``pssh._native`` (Cython, src/_native.pyx) is built
on CPython/POSIX.  It needs no libssh2 headers and does not link libssh2: it
binds the libssh2 bundled with ssh2-python at import time (see src/).

Skipped (pure-Python install; pssh then uses its pure backend) when:
  * PSSH_PURE_PYTHON_BUILD=1 is set at build time (no compiler available),
  * building on Windows or a non-CPython interpreter (e.g. PyPy).
"""
import glob
import os
import platform
import re
import sys

from setuptools import Extension, find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    # Parsed, not imported: importing pssh would need its runtime deps.
    with open(os.path.join(HERE, "pssh", "_version.py")) as fh:
        match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""",
                          fh.read(), re.M)
    if not match:
        raise RuntimeError("no __version__ in pssh/_version.py")
    return match.group(1)


def read_long_description():
    for name in ("README.md", "README.rst"):
        path = os.path.join(HERE, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read(), ("text/markdown" if name.endswith(".md")
                                   else "text/x-rst")
    return "Parallel SSH client library built on ssh2-python and gevent.", \
        "text/plain"


def want_native():
    if os.environ.get("PSSH_PURE_PYTHON_BUILD", "") not in ("", "0"):
        return False, "PSSH_PURE_PYTHON_BUILD is set"
    if sys.platform.startswith("win"):
        return False, "Windows"
    if platform.python_implementation() != "CPython":
        return False, platform.python_implementation()
    return True, None


def native_extensions():
    build, reason = want_native()
    if not build:
        print("pssh: not building pssh._native (%s); pure-Python backend "
              "only" % reason, file=sys.stderr)
        return []
    # Relative paths (setuptools wants them).  Listing the .pyx/.pxi/.h as
    # depends also makes setuptools ship them in the sdist.
    depends = sorted(os.path.relpath(p, HERE) for pattern in
                     ("*.pyx", "*.pxi", "*.h")
                     for p in glob.glob(os.path.join(HERE, "src", pattern)))
    libraries = ["dl"] if sys.platform.startswith("linux") else []
    pyx = os.path.join("src", "_native.pyx")
    c_source = os.path.join("src", "_native.c")
    try:
        from Cython.Build import cythonize
    except ImportError:
        cythonize = None
    if cythonize is not None and os.path.exists(os.path.join(HERE, pyx)):
        ext = Extension("pssh._native", [pyx], include_dirs=["src"],
                        depends=depends, libraries=libraries)
        exts = cythonize([ext], compiler_directives={"language_level": "3"},
                         include_path=["src"])
        for e in exts:
            # cythonize recomputes depends (its .pxi/.h only); keep the .pyx
            # so the sdist can re-cythonize instead of using stale C.
            e.depends = sorted(set(e.depends) | set(depends))
        return exts
    # No Cython: sdists carry the generated C (setuptools ships the
    # cythonized ext sources), so it can still be compiled.
    if not os.path.exists(os.path.join(HERE, c_source)):
        raise RuntimeError(
            "Cython>=3.0 is required to build pssh._native "
            "(or set PSSH_PURE_PYTHON_BUILD=1 to skip it)")
    return [Extension("pssh._native", [c_source], include_dirs=["src"],
                      depends=depends, libraries=libraries)]


long_description, long_description_type = read_long_description()

setup(
    name="pssh",
    version=read_version(),
    description="Parallel SSH client library built on ssh2-python and gevent",
    long_description=long_description,
    long_description_content_type=long_description_type,
    license="LGPL-2.1",
    packages=find_packages(include=["pssh", "pssh.*"]),
    package_data={"pssh": ["py.typed"]},
    ext_modules=native_extensions(),
    python_requires=">=3.8",
    # click, rich and ClusterShell (pure Python) are for the `pssh` command line: it is
    # the first usage example, so a plain install must have it working.
    install_requires=["ssh2-python>=1.2.0,<1.3", "gevent>=23.9", "click>=8.1",
                      "rich>=13", "ClusterShell>=1.9"],
    entry_points={"console_scripts": ["pssh = pssh.cli:main"]},
    extras_require={"test": ["pytest>=7", "pytest-timeout", "paramiko>=3"]},
    zip_safe=False,
    classifiers=[
        "License :: OSI Approved :: GNU Lesser General Public License v2 "
        "(LGPLv2)",
        "Programming Language :: Python :: 3",
        "Programming Language :: Cython",
        "Operating System :: POSIX",
        "Topic :: System :: Networking",
    ],
)
