"""Build the Cython kernels of fastem (metadata lives in pyproject.toml).

On x86-64 the compute kernels (_em, _kmeans, _linalg, _lloyd) are compiled
once per instruction-set variant, and fastem chooses the best one the CPU runs
when it is imported (fastem/_kernels/_dispatch.py):

    baseline   -march=x86-64      SSE2, every x86-64 CPU
    avx2       -march=x86-64-v3   AVX2 + FMA (Haswell, Zen 1 and later)
    avx512     -march=x86-64-v4   AVX-512 F/BW/CD/DQ/VL (Skylake-X, Zen 4)

Each variant is the same .pyx under another module name (_em_avx2 ...): a
two-line file under build/ includes the source, so that Cython names the
module after the variant. Other architectures and compilers build the
baseline only, with the compiler's default target.

Environment switches:

FASTEM_ARCH=...        unset or "portable" (default): the variants above.
                       "native": one build for this machine (-march=native),
                       no run-time choice; such a build runs only on CPUs
                       like the one it was built on. Any other -march value
                       (e.g. "znver4"): one build for that target ("custom").
                       "none": one baseline build for the compiler's default.
FASTEM_NO_OPENMP=1     build the kernels serial even where OpenMP is available.
FASTEM_BOUNDSCHECK=1   turn Cython bounds and wraparound checks back on (debug).
"""
import os
import re
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# built once per instruction-set variant
VARIANT_KERNELS = ["_em", "_kmeans", "_linalg", "_lloyd"]
# kernels whose sums must be made in the order written (see ordered_flags)
ORDERED_KERNELS = {"_lloyd"}
# built once, for the lowest variant: they run before a variant is chosen
COMMON_MODULES = ["_openmp", "_cpu"]
# the portable x86-64 variants, lowest first, and their targets
X86_64_VARIANTS = {"baseline": "x86-64", "avx2": "x86-64-v3", "avx512": "x86-64-v4"}
# where the per-variant sources are written (outside src/, like Cython's C)
VARIANT_SOURCES = os.path.join("build", "kernel-variants")
# the tree the .pyx are included from
SOURCE_ROOT = "src"


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
    """-O3 and the floating-point freedoms the kernels' loops need to become
    SIMD code (the instruction set comes from ``variants``).

    The kernels' inner loops are sums over rows; the compiler vectorises a
    floating-point sum only when allowed to reassociate it
    (-fassociative-math, which needs -fno-signed-zeros and
    -fno-trapping-math). NaN and infinity semantics are kept (no
    -ffinite-math-only): log(0) = -inf marks empty components.
    """
    if sys.platform == "win32":
        return ["/O2", "/fp:fast"]
    return ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fassociative-math",
            "-fno-signed-zeros"]


def ordered_flags(args):
    """``args`` without the reassociation of sums, and with no multiply-add
    fused unless written as fma(): for kernels that reproduce another
    library's rounding (_lloyd.pyx reproduces scikit-learn's k-means)."""
    if sys.platform == "win32":
        return [a for a in args if a != "/fp:fast"] + ["/fp:precise"]
    loose = {"-fassociative-math", "-fno-signed-zeros"}
    return [a for a in args if a not in loose] + ["-ffp-contract=off"]


def _targets_x86_64():
    """Whether the compiler builds for x86-64 (asked of the compiler, not of
    the machine, so that cross builds get the variants of their target)."""
    if sys.platform == "win32":
        return False  # MSVC takes /arch, not -march; one baseline build there
    return _compiles([], "#ifndef __x86_64__\n#error not x86-64\n#endif\n"
                         "int main(void) { return 0; }\n")


def variants():
    """Return the kernel builds as [(variant name, target flags)], lowest first."""
    arch = os.environ.get("FASTEM_ARCH", "").strip()
    if arch == "none":
        return [("baseline", [])]
    if arch not in ("", "portable"):
        flags = [f"-march={arch}"]
        if _compiles(flags, "int main(void) { return 0; }\n"):
            return [("native" if arch == "native" else "custom", flags)]
        warnings.warn(f"The C compiler rejects -march={arch}; building for its "
                      "default instruction set (slower kernels).", stacklevel=2)
        return [("baseline", [])]
    if not _targets_x86_64():
        return [("baseline", [])]
    built = []
    for name, march in X86_64_VARIANTS.items():
        # generic tuning: the variants run on every vendor's CPUs of their level
        flags = [f"-march={march}", "-mtune=generic"]
        if _compiles(flags, "int main(void) { return 0; }\n"):
            built.append((name, flags))
        else:
            warnings.warn(f"The C compiler rejects -march={march} (GCC >= 11 or Clang "
                          f">= 12 know it): fastem is built without its {name} kernels.",
                          stacklevel=2)
    return built or [("baseline", [])]


def _variant_source(kernel, variant, compile_args):
    """Write (when changed) the source of one variant of a kernel: the kernel's
    .pyx included under the variant's module name, plus what it was built with."""
    path = os.path.join(VARIANT_SOURCES, "fastem", "_kernels", f"{kernel}_{variant}.pyx")
    with open(os.path.join(SOURCE_ROOT, "fastem", "_kernels", f"{kernel}.pyx")) as f:
        source = f.read()
    # only the including file's first string is the module's docstring
    doc = re.match(r'\s*("""[\s\S]*?""")', source)
    text = (
        f"# Generated by setup.py: fastem/_kernels/{kernel}.pyx, {variant} variant.\n"
        + (doc.group(1) + "\n" if doc else "")
        + f'include "fastem/_kernels/{kernel}.pyx"\n'
        "\n"
        f"_VARIANT = {variant!r}\n"
        f"_COMPILE_ARGS = {' '.join(compile_args)!r}\n"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            unchanged = f.read() == text
    except OSError:
        unchanged = False
    if not unchanged:  # an untouched file keeps its generated C up to date
        with open(path, "w") as f:
            f.write(text)
    return path


def extensions():
    omp_compile, omp_link = openmp_flags()
    base_args = omp_compile + optimisation_flags()
    debug = _env_flag("FASTEM_BOUNDSCHECK")
    common = dict(
        include_dirs=[np.get_include(), "src/fastem/_kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_link_args=omp_link,
    )
    builds = variants()
    exts = []
    # largest first, so that a parallel build does not end on one long compile
    for kernel in VARIANT_KERNELS:
        for variant, target in reversed(builds):
            args = base_args + target
            if kernel in ORDERED_KERNELS:
                args = ordered_flags(args)
            exts.append(Extension(f"fastem._kernels.{kernel}_{variant}",
                                  [_variant_source(kernel, variant, args)],
                                  extra_compile_args=args, **common))
    lowest_target = builds[0][1]
    exts += [
        Extension(f"fastem._kernels.{name}", [f"src/fastem/_kernels/{name}.pyx"],
                  extra_compile_args=base_args + lowest_target, **common)
        for name in COMMON_MODULES
    ]
    # The generated C goes under build/, out of the source tree and so out of
    # the sdist, which must ship only the .pyx it is generated from.
    return cythonize(
        exts,
        build_dir="build/cython",
        include_path=[SOURCE_ROOT],
        # Cython's worker processes re-import setup.py where they are spawned
        nthreads=(os.cpu_count() or 1) if sys.platform == "linux" else 0,
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


class BuildExt(build_ext):
    """build_ext compiling the extensions in parallel unless ``-j`` says
    otherwise: the variants triple the C to compile."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
