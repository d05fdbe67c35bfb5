"""Which build of the compute kernels this process runs.

setup.py compiles the kernels _em, _kmeans, _linalg and _lloyd once per
instruction-set variant, as modules ``fastem._kernels.<kernel>_<variant>``.
On import, the best variant this CPU can run is chosen (or the one the
environment variable FASTEM_CPU_VARIANT names) and registered under the
plain names ``fastem._kernels._em`` ..., which the rest of fastem imports.

Variants, best first:

- ``native``: a build for the machine it was compiled on (FASTEM_ARCH=native),
  ``custom``: for the -march target the build was given;
  either is the only variant of its build and is taken as runnable.
- ``avx512`` (x86-64-v4), ``avx2`` (x86-64-v3), ``baseline`` (x86-64 / SSE2,
  or the compiler's default target on other architectures).

FASTEM_CPU_VARIANT unset, empty or ``auto`` means the automatic choice. A
variant that is unknown, not built, or that this CPU cannot run is an
ImportError rather than a fallback: a run that asks for a variant must not
quietly measure or test another.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from fastem._kernels import _cpu

ENV_VAR = "FASTEM_CPU_VARIANT"
KERNELS = ("_em", "_kmeans", "_linalg", "_lloyd")
VARIANTS = ("native", "custom", "avx512", "avx2", "baseline")
# the variants of portable builds, whose needs can be asked of the CPU
_LEVELS = ("avx512", "avx2", "baseline")

_selected: dict = {}


def built_variants() -> tuple[str, ...]:
    """The variants this installation holds, best first."""
    return tuple(v for v in VARIANTS
                 if importlib.util.find_spec(f"fastem._kernels._em_{v}") is not None)


def cpu_variants() -> tuple[str, ...]:
    """The portable variants this CPU and its OS can run, best first."""
    levels = _cpu.supported_levels()
    return tuple(v for v in _LEVELS if v == "baseline" or levels[v])


def choose(requested: str | None, built: tuple[str, ...],
           runnable: tuple[str, ...]) -> str:
    """The variant to load: ``requested`` (a FASTEM_CPU_VARIANT value) if it is
    built and runnable, else an ImportError; the best runnable built one when
    nothing is requested."""
    requested = (requested or "").strip().lower()
    if not built:
        raise ImportError("fastem: no compiled kernels found; build fastem first "
                          "(pip install .)")
    if requested in ("", "auto"):
        for variant in built:
            if variant in runnable:
                return variant
        raise ImportError(
            f"fastem: this CPU can run none of the kernel variants built "
            f"({', '.join(built)}); reinstall fastem from source on this machine")
    if requested not in VARIANTS:
        raise ImportError(
            f"fastem: {ENV_VAR}={requested!r} is not a kernel variant; use one "
            f"of {', '.join(VARIANTS)} (or unset it for the automatic choice)")
    if requested not in built:
        raise ImportError(
            f"fastem: {ENV_VAR}={requested!r} names a variant this build does not "
            f"hold; it holds {', '.join(built)}")
    if requested not in runnable:
        raise ImportError(
            f"fastem: {ENV_VAR}={requested!r} names a variant this CPU cannot run; "
            f"it runs {', '.join(v for v in built if v in runnable) or 'none'}")
    return requested


def load(variant: str) -> dict:
    """The kernel modules of one variant, by kernel name (imported, not
    installed); the variant must be one this CPU can run."""
    return {name: importlib.import_module(f"fastem._kernels.{name}_{variant}")
            for name in KERNELS}


def install() -> tuple:
    """Choose the variant, register its modules under the kernels' plain names
    and return them in the order of ``KERNELS``."""
    built = built_variants()
    cpu = cpu_variants()
    runnable = tuple(v for v in built if v in cpu or v not in _LEVELS)
    requested = os.environ.get(ENV_VAR)
    variant = choose(requested, built, runnable)
    modules = load(variant)
    for name, module in modules.items():
        sys.modules[f"fastem._kernels.{name}"] = module
    _selected.update(variant=variant, requested=requested or None, built=built,
                     runnable=runnable, cpu=cpu)
    return tuple(modules[name] for name in KERNELS)


def info() -> dict:
    """The chosen variant and how it was built (for ``fastem.show_config``)."""
    em = sys.modules["fastem._kernels._em"]
    return {
        "variant": _selected["variant"],
        "requested": _selected["requested"],
        "built": list(_selected["built"]),
        "runnable": list(_selected["runnable"]),
        "cpu": list(_selected["cpu"]),
        "compiler": _cpu.compiler(),
        "compile_args": getattr(em, "_COMPILE_ARGS", None),
    }
