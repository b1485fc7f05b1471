"""Builds the one C extension (raw deflate by the bundled zlib 1.2.13) and installs the man page where `man`
finds it next to the console script; all other metadata lives in pyproject.toml."""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

ZLIB = "git_panini/codecs/zlib_1_2_13/"

HOW = {"win32": "the Microsoft C++ Build Tools", "darwin": "xcode-select --install"}
NO_COMPILER = ("git-panini needs a C compiler and the Python headers to build its bundled zlib "
               f"({HOW.get(sys.platform, 'e.g. apt-get install gcc python3-dev')}), "
               "or a prebuilt wheel: pip install --only-binary git-panini git-panini")


class BuildExt(build_ext):
    """A missing compiler or Python.h ends the build with the one line that says what to install, not
    setuptools' error about the command it ran (whatever the compiler said is printed above it)."""

    def run(self):
        try:
            super().run()
        except (CCompilerError, ExecError, PlatformError):
            sys.exit(NO_COMPILER)


setup(
    cmdclass={"build_ext": BuildExt},
    data_files=[("share/man/man1", ["git_panini/man/git-panini.1"])],
    ext_modules=[
        Extension(
            "git_panini.codecs._zlib_1_2_13",
            sources=["git_panini/codecs/_zlib_1_2_13.c"]
            + [ZLIB + name for name in ("adler32.c", "deflate.c", "trees.c", "zutil.c")],
            # Z_PREFIX: z_-prefixed symbols that never clash with the libz the interpreter loaded.
            define_macros=[("Z_SOLO", None), ("NO_GZIP", None), ("Z_PREFIX", None)],
            extra_compile_args=[] if sys.platform == "win32" else ["-fvisibility=hidden"],
        )
    ]
)
