"""fastem: Gaussian mixture models fitted by EM on large data, fast, on the CPU.

``fastem.GaussianMixture`` and ``fastem.BayesianGaussianMixture`` are drop-ins
for scikit-learn's, running on
multi-threaded Cython kernels that turn each EM iteration into one streaming
pass over the data.
"""
from fastem._bayesian_mixture import BayesianGaussianMixture
from fastem._config import show_config
from fastem._gaussian_mixture import GaussianMixture
from fastem._io import load
from fastem._kernels._openmp import effective_n_threads, openmp_enabled
from fastem._selection import ModelSelection, select_model
from fastem._sources import Streamed
from fastem._summaries import from_summaries, summarize
from fastem._version import __version__

__all__ = [
    "BayesianGaussianMixture",
    "GaussianMixture",
    "ModelSelection",
    "Streamed",
    "__version__",
    "effective_n_threads",
    "from_summaries",
    "load",
    "openmp_enabled",
    "select_model",
    "show_config",
    "summarize",
]
