"""Build the Cython kernels of fastem (metadata lives in pyproject.toml).

Environment switches:

FASTEM_NO_OPENMP=1     build the kernels serial even where OpenMP is available.
FASTEM_ARCH=...        instruction set to compile the kernels for: "native"
                       (default: this machine's, e.g. AVX-512 where present),
                       any -march value (e.g. "x86-64-v3" for a portable
                       AVX2 build), or "none" for the compiler's default.
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

KERNELS = ["_openmp", "_em", "_kmeans", "_linalg"]


def _env_flag(name):
    return os.environ.get(name, "0").lower() not in ("", "0", "false", "no")


def _compiles(flags, source, link=False):
    """Whether the compiler setuptools will use accepts ``flags`` for ``source``."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objects, "probe", output_dir=tmp,
                                         extra_postargs=flags)
        except Exception:  # any compile or link failure means "no"
            return False
    return True


def openmp_flags():
    """Return (compile_args, link_args) enabling OpenMP, or empty lists.

    The probe compiles and links a tiny program with the compiler setuptools
    will use, so a compiler without OpenMP support falls back to a serial
    build with a warning instead of failing.
    """
    if _env_flag("FASTEM_NO_OPENMP"):
        return [], []
    flag = "/openmp" if sys.platform == "win32" else "-fopenmp"
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
    if not _compiles([flag], source, link=True):
        warnings.warn(
            "The C compiler does not support OpenMP: fastem's kernels are "
            "built serial (n_threads has no effect). Install a compiler with "
            "OpenMP (e.g. gcc, or clang with libomp) for multi-threaded fits.",
            stacklevel=2,
        )
        return [], []
    return [flag], [flag]


def optimisation_flags():
    """-O3, the target instruction set, and the floating-point freedoms the
    kernels' loops need to become SIMD code.

    The kernels' inner loops are sums over rows; the compiler vectorises a
    floating-point sum only when allowed to reassociate it
    (-fassociative-math, which needs -fno-signed-zeros and
    -fno-trapping-math). NaN and infinity semantics are kept (no
    -ffinite-math-only): log(0) = -inf marks empty components.
    """
    if sys.platform == "win32":
        return ["/O2", "/fp:fast"]
    flags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
             "-fno-signed-zeros"]
    arch = os.environ.get("FASTEM_ARCH", "native").strip()
    if arch and arch != "none":
        candidate = [f"-march={arch}"]
        if _compiles(candidate, "int main(void) { return 0; }\n"):
            flags += candidate
        else:
            warnings.warn(f"The C compiler rejects -march={arch}; building for "
                          "its default instruction set (slower kernels).", stacklevel=2)
    return flags


def extensions():
    compile_args, link_args = openmp_flags()
    compile_args = compile_args + optimisation_flags()
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
    # The generated C goes under build/, out of the source tree and so out of
    # the sdist, which must ship only the .pyx it is generated from.
    return cythonize(
        exts,
        build_dir="build/cython",
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
