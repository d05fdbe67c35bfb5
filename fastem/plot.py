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
    _import_matplotlib,
    component_color,
    component_covariances,
    draw_component,
    feature_labels,
    is_bayesian,
    legend_handles,
    mixture_title,
    plot_mixture_2d,
    predict_labels,
    scatter_points,
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
    the evidence (a total) for a BayesianGaussianMixture. Iterations are
    whole numbers and the bounds are written out in full (-4.15538, not
    an offset and 1e-5 steps)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _axes(ax)
    values = np.asarray(gm.lower_bounds_, dtype=np.float64)
    ax.plot(np.arange(1, len(values) + 1), values, marker=".")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _plain_numbers(ax)
    ax.set_xlabel("iteration")
    bayesian = is_bayesian(gm)
    ax.set_ylabel("lower bound on the log-evidence (up to a constant)" if bayesian
                  else "mean log-likelihood per sample")
    ax.set_title(f"{'variational' if bayesian else 'EM'} trace, K = {gm.n_components} "
                 f"({gm.covariance_type}); "
                 f"{'converged' if gm.converged_ else 'not converged'}")
    return fig


def _plain_numbers(ax):
    # Converged bounds differ in their last digits: matplotlib's default
    # then labels the ticks as steps from an offset ("1e-5" and "-4.1554"
    # in the corner), which hides the values. Only the default (scalar)
    # formatter has these settings: a log axis of the caller's keeps its own.
    from matplotlib.ticker import ScalarFormatter

    if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")


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
                    feature_name: str | None = None,
                    feature_names: Sequence[str] | None = None) -> Figure:
    """One-dimensional data as a histogram (a density), with the fitted
    mixture's density and each weighted component's (numbered as
    ``predict`` labels them, from 0).

    The x axis is labelled ``feature_name`` (or ``feature_names[0]``), by
    default the column of X if it is a data frame, else the model's
    ``feature_names_in_`` if it has them, else "feature 0"."""
    if feature_names is None and feature_name is not None:
        feature_names = [feature_name]
    fig, ax = _axes(ax)
    points = _points(X, 10 * _MAX_POINTS)
    if points.shape[1] != 1 or gm.means_.shape[1] != 1:
        raise ValueError("plot_density_1d draws one-dimensional data and mixtures")
    name, = feature_labels(gm, X, feature_names, 1)
    x = points[:, 0]
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
        ax.plot(grid, part, linestyle="--", color=component_color(k),
                label=f"component {k}: weight {w:.2f}, mean {m:.3g}, sd {np.sqrt(v):.3g}")
    ax.plot(grid, total, color="black", linewidth=2, label="mixture")
    ax.set_xlabel(name)
    ax.set_ylabel("density")
    ax.set_title(mixture_title(gm))
    ax.legend(fontsize="small")
    return fig


def _pairs_panel_size(n_features):
    # Inches per panel: 2.6 up to five features, then smaller (down to 1.6)
    # so that the figure stays near 13 inches a side. A saved PNG grows
    # with its pixels; at 2.6 inches, eight features made a 2 MB PNG.
    return max(1.6, min(2.6, 13.0 / n_features))


def _draw_pair(ax, gm, points, labels, covariances, x, y):
    """Feature x against feature y: the points coloured by label, each
    component's ellipses of its marginal covariance and its mean."""
    pair = [x, y]
    for k in shown_components(gm):
        members = points[labels == k]
        # Small markers without antialiasing: at this size it is not
        # visible, and the exact colours compress to a PNG half the size.
        scatter_points(ax, members[:, x], members[:, y], component_color(k),
                       s=4, alpha=0.5, antialiased=False)
        draw_component(ax, gm.means_[k, pair], covariances[k][np.ix_(pair, pair)],
                       component_color(k), linewidth=1.5, markersize=7)


def _legend_beside(fig, handles):
    """One legend for the figure, right of the panels."""
    try:
        # constrained layout (matplotlib 3.7 and later) makes room for it
        return fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    except ValueError:
        # older versions know no "outside": the legend then covers a corner
        # of the top right panel, a mirror image of the bottom left one
        return fig.legend(handles=handles, loc="upper right", fontsize="small")


def plot_pairs(gm: GaussianMixture, X: ArrayLike, feature_names: Sequence[str] | None = None,
               max_points: int = _MAX_POINTS) -> Figure:
    """Every pair of features: points coloured by label, each component's
    1- and 2-sigma ellipses of its marginal covariance and its mean drawn
    over them, histograms on the diagonal, and one legend for the figure
    (the components, numbered as ``predict`` labels them, from 0, with
    their weights, and the ellipses' line styles).

    ``feature_names`` labels the axes; by default the columns of X if it is
    a data frame, else the model's ``feature_names_in_`` if it has them,
    else "feature 0", "feature 1", ... At most ``max_points`` rows of X (a
    seeded random subset) are drawn."""
    _import_matplotlib()
    import matplotlib.pyplot as plt

    points = _points(X, max_points)
    labels = predict_labels(gm, points)
    D = points.shape[1]
    names = feature_labels(gm, X, feature_names, D)
    covariances = component_covariances(gm)
    side = _pairs_panel_size(D) * D
    # the extra width holds the legend, right of the panels
    fig, axes = plt.subplots(D, D, figsize=(side + 2.4, side), layout="constrained",
                             squeeze=False)
    for i in range(D):
        for j in range(D):
            ax = axes[i, j]
            if i == j:
                ax.hist(points[:, i], bins=40, color="0.7")
            else:
                _draw_pair(ax, gm, points, labels, covariances, j, i)
            if i == D - 1:
                ax.set_xlabel(names[j])
            if j == 0:
                ax.set_ylabel(names[i])
    _legend_beside(fig, legend_handles(gm))
    fig.suptitle(f"{mixture_title(gm)} ({gm.covariance_type}); ellipses at 1 and 2 sigma")
    return fig


def plot_mixture(gm: GaussianMixture, X: ArrayLike, feature_names: Sequence[str] | None = None,
                 max_points: int = _MAX_POINTS) -> Figure:
    """The picture that suits the data's dimension: a histogram with the
    mixture density (1 feature), points with component ellipses (2), or
    pairwise panels (3 or more).

    ``feature_names`` labels the axes; by default the columns of X if it is
    a data frame, else the model's ``feature_names_in_`` if it has them,
    else "feature 0", "feature 1", ..."""
    D = gm.means_.shape[1]
    # read before _points turns a data frame into an array
    names = feature_labels(gm, X, feature_names, D)
    if D == 1:
        return plot_density_1d(gm, X, feature_names=names)
    if D == 2:
        return plot_mixture_2d(gm, _points(X, max_points), feature_names=names)
    return plot_pairs(gm, X, feature_names=names, max_points=max_points)
