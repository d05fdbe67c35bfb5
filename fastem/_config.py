"""``fastem.show_config``: how this fastem was built and what it runs on."""
from __future__ import annotations

import platform

from fastem._kernels import _dispatch
from fastem._kernels._openmp import effective_n_threads, openmp_enabled
from fastem._version import __version__


def _config() -> dict:
    import numpy
    import scipy
    import sklearn

    kernels = _dispatch.info()
    return {
        "fastem": __version__,
        "kernels": {
            "variant": kernels["variant"],
            # FASTEM_CPU_VARIANT, or None for the automatic choice
            "requested": kernels["requested"],
            "built": kernels["built"],
            "compiler": kernels["compiler"],
            "compile_args": kernels["compile_args"],
        },
        "cpu": {
            "machine": platform.machine(),
            # the portable variants this CPU and its OS can run, best first
            "supports": kernels["cpu"],
        },
        "openmp": {"enabled": openmp_enabled(), "threads": effective_n_threads()},
        "versions": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }


def _format(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None else str(value)


def show_config(mode: str = "stdout") -> dict | None:
    """Show how fastem was built and which of its kernel builds runs here.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default "stdout"
        "stdout" prints the information; "dicts" returns it instead.

    Returns
    -------
    dict or None
        With ``mode="dicts"``: the fastem version (``"fastem"``), the kernel
        variant in use, the one FASTEM_CPU_VARIANT requested, the variants
        built, the compiler and its arguments (``"kernels"``), the machine and
        the variants its CPU supports (``"cpu"``), whether OpenMP is on and how
        many threads a fit uses by default (``"openmp"``), and the versions of
        Python, NumPy, SciPy and scikit-learn (``"versions"``).
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    config = _config()
    if mode == "dicts":
        return config
    print(f"fastem {config['fastem']}")
    for section, values in config.items():
        if section == "fastem":
            continue
        print(f"{section}:")
        for key, value in values.items():
            print(f"  {key}: {_format(value)}")
    return None
