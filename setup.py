"""Builds the one C extension (raw deflate by the bundled zlib 1.2.13) and installs the man page where `man`
finds it next to the console script; all other metadata lives in pyproject.toml."""

import sys

from setuptools import Extension, setup

ZLIB = "git_panini/codecs/zlib_1_2_13/"

setup(
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
