"""The workloads of the suite: data shape, model and threads, by name.

A workload is a fixed amount of EM work. Adding one is one entry in
:data:`WORKLOADS`; its data and initial parameters follow from its fields
(:func:`fastem.bench.problems.make_problem`), and every library runs it.
"""
from dataclasses import asdict, dataclass, replace

import numpy as np

import fastem

#: EM iterations of the long fit; the short one does one (see timing.py).
ITERATIONS = 10

# Below this many rows a quick run keeps the full workload: it is fast already.
_QUICK_MIN_ROWS = 10_000
_QUICK_FACTOR = 100


@dataclass(frozen=True)
class Workload:
    """A fixed amount of EM work: data shape, model and threads.

    ``n_threads=None`` means all the threads fastem would use; scikit-learn
    then runs with its BLAS defaults and daal4py with its own.
    """

    name: str
    title: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str = "full"
    dtype: str = "float64"
    n_threads: int | None = None
    max_iter: int = ITERATIONS
    seed: int = 0

    def quick(self) -> "Workload":
        """The same workload with N cut a hundredfold (``--quick``)."""
        n = max(self.n_samples // _QUICK_FACTOR, min(self.n_samples, _QUICK_MIN_ROWS))
        return replace(self, n_samples=n)

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def data_bytes(self) -> int:
        return self.n_samples * self.n_features * self.itemsize

    @property
    def threads(self) -> int:
        return fastem.effective_n_threads(self.n_threads)

    def shape_label(self) -> str:
        return (f"{self.n_samples:,} x {self.n_features}, K={self.n_components}, "
                f"{self.covariance_type}, {self.dtype}, {self.threads} thr")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Workload":
        return cls(**d)


def _variant(base, suffix, title, **changes):
    return replace(base, name=f"{base.name}-{suffix}", title=title, **changes)


def _high_dimension():
    """Embedding-sized full covariance (the BLAS path): D = 128 ... 1,024,
    K = 8 and 32, N for about 1e11 flops (a second) per iteration, 3
    iterations (scikit-learn takes several seconds each); float32 variants
    where the components have more rows than features; tied variants from
    D = 256 with 4 times the rows (a tied iteration is a K-th of full's
    work; scikit-learn's tied iteration on 8 times the rows took 19 s)."""
    sizes = {(128, 8): 380_000, (128, 32): 95_000, (256, 8): 95_000,
             (256, 32): 24_000, (512, 8): 24_000, (512, 32): 6_000,
             (1024, 8): 6_000, (1024, 32): 2_048}
    out = []
    for (d, k), n in sizes.items():
        base = Workload(f"D{d}-K{k}", f"embed {d}d", n, d, k, "full", max_iter=3)
        out.append(base)
        if n >= k * d:
            # with fewer rows per component than features a covariance is
            # singular but for reg_covar = 1e-6, which float32 statistics of
            # unit-scale data cannot resolve (fits fail as collapsed)
            out.append(_variant(base, "f32", f"embed {d}d f32", dtype="float32"))
        if d >= 256 and k == 8:
            out.append(_variant(base, "tied", f"embed {d}d tied", covariance_type="tied",
                                n_samples=n * 4))
    return out


_W1 = Workload("W1", "full-mid", 1_000_000, 16, 16, "full")
_W2 = Workload("W2", "diag-wide", 1_000_000, 64, 32, "diag")

#: All workloads, keyed by name, in the order they are run and printed:
#: each base workload followed by its variants, which share its data.
WORKLOADS = {w.name: w for w in [
    _W1,
    _variant(_W1, "tied", "tied", covariance_type="tied"),
    _variant(_W1, "f32", "full-mid f32", dtype="float32"),
    _variant(_W1, "1thread", "full-mid 1 thr", n_threads=1),
    _W2,
    _variant(_W2, "spherical", "spherical", covariance_type="spherical"),
    _variant(_W2, "f32", "diag-wide f32", dtype="float32"),
    _variant(_W2, "1thread", "diag-wide 1 thr", n_threads=1),
    Workload("W3", "1d-huge", 10_000_000, 1, 2, "full"),
    Workload("W4", "full-highdim", 200_000, 64, 10, "full"),
    Workload("W5", "small", 10_000, 2, 3, "full"),
    *_high_dimension(),
]}


def select_workloads(names=None, quick: bool = False) -> list[Workload]:
    """Workloads by name (case-insensitive), in suite order.

    Parameters
    ----------
    names : iterable of str, optional
        Default: all of them.
    quick : bool
        Scale N down as ``--quick`` does.

    Returns
    -------
    workloads : list of Workload
    """
    if names is None:
        chosen = list(WORKLOADS.values())
    else:
        by_lower = {name.lower(): w for name, w in WORKLOADS.items()}
        wanted = [n.strip() for n in names if n.strip()]
        unknown = [n for n in wanted if n.lower() not in by_lower]
        if unknown:
            raise ValueError(f"unknown workload(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(WORKLOADS)}")
        if not wanted:
            raise ValueError("no workload given")
        keep = {by_lower[n.lower()].name for n in wanted}
        chosen = [w for w in WORKLOADS.values() if w.name in keep]
    return [w.quick() for w in chosen] if quick else chosen
