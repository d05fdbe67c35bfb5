"""The compiled kernels. ``_em``, ``_kmeans``, ``_linalg`` and ``_lloyd`` are
the build of each for this CPU, chosen on import (see ``_dispatch``); import
them from here or by their plain module names as usual."""
from fastem._kernels._dispatch import install as _install

_em, _kmeans, _linalg, _lloyd = _install()
