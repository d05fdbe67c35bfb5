"""Plots of fitted mixtures and of model selection (``pip install
'fastem[plot]'``). Every function returns the matplotlib Figure; save it with
``fig.savefig("name.png")`` (or .svg, .pdf). Without a display, select a
non-interactive backend first (``matplotlib.use("Agg")``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from fastem._plotting import (
    _SIGMA_STYLES,
    _SIGMAS,
    _ellipse_geometry,
    _import_matplotlib,
    component_covariances,
    is_bayesian,
    mixture_title,
    plot_mixture_2d,
    shown_components,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fastem._gaussian_mixture import GaussianMixture
    from fastem._selection import ModelSelection

__all__ = ["plot_criterion", "plot_density_1d", "plot_lower_bounds", "plot_mixture",
           "plot_mixture_2d", "plot_pairs"]

# points drawn at most in a scatter: more only darken the picture
_MAX_POINTS = 20_000


def _axes(ax, figsize=(7.0, 5.0)):
    _import_matplotlib()
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=figsize, layout="constrained")


def _points(X, max_points, seed=0):
    """At most max_points rows of X (a seeded random subset), in memory;
    streamed inputs (a .npy path, HDF5, Zarr, ...) are read in one pass.
    Missing values (NaN) are kept: a point is drawn where it is observed."""
    from fastem._data import is_out_of_core
    from fastem._sources import as_source

    rng = np.random.default_rng(seed)
    if is_out_of_core(X):
        reader = as_source(X, [np.float64], allow_nan=True)
        n = reader.n_samples
        rows = (np.arange(n) if n <= max_points
                else np.sort(rng.choice(n, max_points, replace=False)))
        X = reader.take(rows)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, np.newaxis]
    if len(X) > max_points:
        X = X[np.sort(rng.choice(len(X), max_points, replace=False))]
    return X


def plot_criterion(selection: ModelSelection, criterion: str | None = None,
                   ax: Axes | None = None) -> Figure:
    """BIC (or AIC, ICL) against K, one line per covariance type, the chosen
    model marked, as mclust's plot of a ``Mclust`` fit (lower is better); for
    a cross-validated selection the held-out log-likelihood with its
    standard deviation over folds (higher is better).

    Parameters
    ----------
    selection : ModelSelection
        The result of ``fastem.select_model``.
    criterion : {"bic", "aic", "icl", "cv"}, optional
        Default: the one the selection used.
    """
    criterion = (criterion or selection.criterion).lower()
    if criterion == "cv":
        return _plot_cv(selection, ax)
    fig, ax = _axes(ax)
    types = list(dict.fromkeys(row["covariance_type"] for row in selection.table))
    markers = dict(zip(("full", "tied", "diag", "spherical"), "osD^", strict=True))
    for i, cov_type in enumerate(types):
        rows = [r for r in selection.table if r["covariance_type"] == cov_type]
        ax.plot([r["n_components"] for r in rows], [r[criterion] for r in rows],
                marker=markers.get(cov_type, "o"), color=f"C{i}", label=cov_type)
    best = min((r for r in selection.table if not math.isnan(r[criterion])),
               key=lambda r: r[criterion])
    ax.plot(best["n_components"], best[criterion], marker="o", markersize=16,
            markerfacecolor="none", markeredgecolor="black", linestyle="none",
            label=f"minimum: K={best['n_components']}, {best['covariance_type']}")
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_title(f"{criterion.upper()} over K and covariance type")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    return fig


def plot_lower_bounds(gm: GaussianMixture, ax: Axes | None = None) -> Figure:
    """The lower bound at every iteration (``lower_bounds_``): the mean
    log-likelihood for a GaussianMixture, the variational lower bound on
    the evidence (a total) for a BayesianGaussianMixture."""
    fig, ax = _axes(ax)
    values = np.asarray(gm.lower_bounds_, dtype=np.float64)
    ax.plot(np.arange(1, len(values) + 1), values, marker=".")
    ax.set_xlabel("iteration")
    bayesian = is_bayesian(gm)
    ax.set_ylabel("lower bound on the log-evidence (up to a constant)" if bayesian
                  else "mean log-likelihood per sample")
    ax.set_title(f"{'variational' if bayesian else 'EM'} trace, K = {gm.n_components} "
                 f"({gm.covariance_type}); "
                 f"{'converged' if gm.converged_ else 'not converged'}")
    return fig


def _normal_pdf(x, mean, var):
    return np.exp(-0.5 * (x - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)


def _plot_cv(selection, ax):
    fig, ax = _axes(ax)
    rows = [r for r in selection.table if r["error"] is None]
    for i, cov_type in enumerate(dict.fromkeys(r["covariance_type"] for r in rows)):
        mine = [r for r in rows if r["covariance_type"] == cov_type]
        ax.errorbar([r["n_components"] for r in mine], [r["cv_mean"] for r in mine],
                    yerr=[r["cv_std"] for r in mine], marker="o", capsize=3,
                    color=f"C{i}", label=cov_type)
    best = selection.table[selection.best_index_]
    ax.plot(best["n_components"], best["cv_mean"], marker="o", markersize=16,
            markerfacecolor="none", markeredgecolor="black", linestyle="none",
            label=f"maximum: K={best['n_components']}, {best['covariance_type']}")
    ax.set_xlabel("number of components K")
    ax.set_ylabel("held-out log-likelihood per row (higher is better)")
    ax.set_title("cross-validated log-likelihood over K and covariance type")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    return fig


def plot_density_1d(gm: GaussianMixture, X: ArrayLike, ax: Axes | None = None, bins: int = 60,
                    feature_name: str | None = None) -> Figure:
    """One-dimensional data as a histogram (a density), with the fitted
    mixture's density and each weighted component's."""
    fig, ax = _axes(ax)
    X = _points(X, 10 * _MAX_POINTS)
    if X.shape[1] != 1 or gm.means_.shape[1] != 1:
        raise ValueError("plot_density_1d draws one-dimensional data and mixtures")
    x = X[:, 0]
    ax.hist(x, bins=bins, density=True, color="0.8", edgecolor="0.6", label="data")
    grid = np.linspace(x.min(), x.max(), 400)
    variances = component_covariances(gm)[:, 0, 0]
    total = np.zeros_like(grid)
    shown = shown_components(gm)
    for k, (w, m, v) in enumerate(zip(gm.weights_, gm.means_[:, 0], variances, strict=True)):
        part = w * _normal_pdf(grid, m, v)
        total += part
        if k not in shown:
            continue
        ax.plot(grid, part, linestyle="--", color=f"C{k % 10}",
                label=f"component {k + 1}: weight {w:.2f}, mean {m:.3g}, sd {np.sqrt(v):.3g}")
    ax.plot(grid, total, color="black", linewidth=2, label="mixture")
    ax.set_xlabel(feature_name or "x")
    ax.set_ylabel("density")
    ax.set_title(mixture_title(gm))
    ax.legend(fontsize="small")
    return fig


def plot_pairs(gm: GaussianMixture, X: ArrayLike, feature_names: Sequence[str] | None = None,
               max_points: int = _MAX_POINTS) -> Figure:
    """Every pair of features: points coloured by label, each component's
    1- and 2-sigma ellipses of its marginal covariance, histograms on the
    diagonal."""
    _import_matplotlib()
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    X = _points(X, max_points)
    D = X.shape[1]
    names = list(feature_names or [f"feature {i}" for i in range(D)])
    labels = gm.predict(X)
    covs = component_covariances(gm)
    fig, axes = plt.subplots(D, D, figsize=(2.6 * D, 2.6 * D), layout="constrained",
                             squeeze=False)
    for i in range(D):
        for j in range(D):
            ax = axes[i, j]
            if i == j:
                ax.hist(X[:, i], bins=40, color="0.7")
            else:
                for k in shown_components(gm):
                    members = X[labels == k]
                    ax.scatter(members[:, j], members[:, i], s=4, alpha=0.5,
                               color=f"C{k % 10}", edgecolors="none")
                    sub = covs[k][np.ix_([j, i], [j, i])]
                    for n_sigma in _SIGMAS:
                        width, height, angle = _ellipse_geometry(sub, n_sigma)
                        ax.add_patch(Ellipse(gm.means_[k, [j, i]], width, height,
                                             angle=angle, fill=False,
                                             edgecolor=f"C{k % 10}",
                                             linestyle=_SIGMA_STYLES[n_sigma]))
            if i == D - 1:
                ax.set_xlabel(names[j])
            if j == 0:
                ax.set_ylabel(names[i])
    fig.suptitle(f"{mixture_title(gm)} ({gm.covariance_type}); ellipses at 1 and 2 sigma")
    return fig


def plot_mixture(gm: GaussianMixture, X: ArrayLike, feature_names: Sequence[str] | None = None,
                 max_points: int = _MAX_POINTS) -> Figure:
    """The picture that suits the data's dimension: a histogram with the
    mixture density (1 feature), points with component ellipses (2), or
    pairwise panels (3 or more)."""
    D = gm.means_.shape[1]
    if D == 1:
        return plot_density_1d(gm, X, feature_name=(feature_names or [None])[0])
    if D == 2:
        return plot_mixture_2d(gm, _points(X, max_points), feature_names=feature_names)
    return plot_pairs(gm, X, feature_names=feature_names, max_points=max_points)
