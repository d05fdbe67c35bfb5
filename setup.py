"""Build the Cython kernels of fastem (metadata lives in pyproject.toml).

Environment switches:

FASTEM_NO_OPENMP=1     build the kernels serial even where OpenMP is available.
FASTEM_BOUNDSCHECK=1   turn Cython bounds and wraparound checks back on (debug).
"""
import os
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["_openmp", "_em", "_kmeans"]


def _env_flag(name):
    return os.environ.get(name, "0").lower() not in ("", "0", "false", "no")


def openmp_flags():
    """Return (compile_args, link_args) enabling OpenMP, or empty lists.

    The probe compiles and links a tiny program with the compiler setuptools
    will use, so a compiler without OpenMP support falls back to a serial
    build with a warning instead of failing.
    """
    if _env_flag("FASTEM_NO_OPENMP"):
        return [], []
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    flag = "/openmp" if sys.platform == "win32" else "-fopenmp"
    compiler = new_compiler()
    customize_compiler(compiler)
    source = textwrap.dedent(
        """
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            return n > 0 ? 0 : 1;
        }
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe_openmp.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(
                objects, "probe_openmp", output_dir=tmp, extra_postargs=[flag]
            )
        except Exception:  # any compile or link failure means no OpenMP
            warnings.warn(
                "The C compiler does not support OpenMP: fastem's kernels are "
                "built serial (n_threads has no effect). Install a compiler with "
                "OpenMP (e.g. gcc, or clang with libomp) for multi-threaded fits."
            )
            return [], []
    return [flag], [flag]


def extensions():
    compile_args, link_args = openmp_flags()
    if sys.platform != "win32":
        compile_args = compile_args + ["-O3"]
    debug = _env_flag("FASTEM_BOUNDSCHECK")
    exts = [
        Extension(
            f"fastem._kernels.{name}",
            [f"src/fastem/_kernels/{name}.pyx"],
            include_dirs=[np.get_include(), "src/fastem/_kernels"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
        for name in KERNELS
    ]
    return cythonize(
        exts,
        include_path=["src"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": debug,
            "wraparound": debug,
            "cdivision": True,
            "initializedcheck": debug,
            "nonecheck": False,
            "cpow": True,
        },
    )


setup(ext_modules=extensions())
