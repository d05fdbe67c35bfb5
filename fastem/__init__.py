"""fastem: Gaussian mixture models fitted by EM on large data, fast, on the CPU.

``fastem.GaussianMixture`` and ``fastem.BayesianGaussianMixture`` are drop-ins
for scikit-learn's, running on multi-threaded Cython kernels that turn each
EM iteration into one streaming pass over the data.
"""
import os
from importlib import import_module

from fastem._version import __version__ as __version__

# Where each public name lives. A name is imported when first used, so that
# ``import fastem`` (the start of the ``fastem`` command, where Ctrl-C must
# end in one line) does not wait for NumPy, SciPy, scikit-learn and the
# kernels.
_PUBLIC = {
    "BayesianGaussianMixture": "fastem._bayesian_mixture",
    "GaussianMixture": "fastem._gaussian_mixture",
    "ModelSelection": "fastem._selection",
    "Streamed": "fastem._sources",
    "effective_n_threads": "fastem._kernels._openmp",
    "from_summaries": "fastem._summaries",
    "load": "fastem._io",
    "openmp_enabled": "fastem._kernels._openmp",
    "select_model": "fastem._selection",
    "show_config": "fastem._config",
    "summarize": "fastem._summaries",
}

__all__ = sorted([*_PUBLIC, "__version__"])

# A kernel variant forced by FASTEM_CPU_VARIANT that this build or CPU cannot
# run is an ImportError of ``import fastem`` itself (README, "Build options"),
# not of a later first use.
if os.environ.get("FASTEM_CPU_VARIANT", "auto").strip().lower() not in ("", "auto"):
    import_module("fastem._kernels")


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'fastem' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
