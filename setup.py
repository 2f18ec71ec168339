"""Builds fastproxy's Cython extension(s) from ext/.

Everything else about the package lives in pyproject.toml. Environment switches:
  FASTPROXY_NO_EXTENSIONS=1  build nothing (the pure-Python twins are used at run time)
  CYTHON_TRACE=1             compile with line tracing (for coverage/profiling of the .pyx)
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

ext_modules: list[Extension] = []
if os.environ.get("FASTPROXY_NO_EXTENSIONS") != "1":
    from Cython.Build import cythonize

    trace = os.environ.get("CYTHON_TRACE") == "1"
    macros = [("CYTHON_TRACE_NOGIL", "1")] if trace else []
    cflags = ["-O3", "-fno-strict-aliasing"]
    extensions = [
        Extension(
            "fastproxy.audio._audio_c",
            ["ext/_audio_c.pyx"],
            define_macros=macros,
            extra_compile_args=cflags,
        ),
        # The relay cimports picows (pinned exactly in pyproject.toml: it depends on picows'
        # struct and vtable layout) and includes the same kernel .pxi files.
        Extension(
            "fastproxy.net._relay_c",
            ["ext/_relay_c.pyx"],
            define_macros=macros,
            extra_compile_args=cflags,
        ),
    ]
    ext_modules = cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "linetrace": trace,
        },
    )

setup(ext_modules=ext_modules)
