"""Plots of fitted mixtures (needs matplotlib: ``pip install fastem[plot]``)."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from fastem import _covtypes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fastem._gaussian_mixture import GaussianMixture

_SIGMAS = (1.0, 2.0)
_SIGMA_STYLES = {1.0: "-", 2.0: "--"}

# Drawing order: the points at the bottom, the ellipses over them and the
# means on top. At one zorder artists are drawn in the order added, and
# each component's points would cover the ellipses of those added before.
POINTS_ZORDER = 1
ELLIPSE_ZORDER = 3
MEAN_ZORDER = 4


def _import_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "plotting requires matplotlib, which is not installed; install "
            "it with: pip install 'fastem[plot]'"
        ) from exc


def component_covariances(gm: GaussianMixture) -> np.ndarray:
    """Return the full covariance matrix of every component of a fitted mixture.

    Parameters
    ----------
    gm : GaussianMixture
        A fitted mixture of any ``covariance_type``.

    Returns
    -------
    covariances : ndarray of shape (n_components, n_features, n_features)
        The shared matrix repeated for "tied", diagonal matrices for "diag"
        and multiples of the identity for "spherical".
    """
    n_components, n_features = gm.means_.shape
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    return _covtypes.get(gm.covariance_type).dense(cov, n_components, n_features)


def _ellipse_geometry(cov, n_sigma):
    # eigh returns ascending eigenvalues: the last eigenvector is the major axis.
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    major = vecs[:, 1]
    angle = np.degrees(np.arctan2(major[1], major[0]))
    width, height = 2.0 * n_sigma * np.sqrt(vals[::-1])
    return width, height, angle


# A Bayesian mixture switches the components the data do not need off by
# giving them weights near 0: plots draw the components above this weight
ACTIVE_WEIGHT = 0.01


def is_bayesian(gm) -> bool:
    return hasattr(gm, "weight_concentration_")


def shown_components(gm) -> list[int]:
    """The components a plot draws: all of them, or for a Bayesian mixture
    those with a weight of at least ACTIVE_WEIGHT."""
    n_components = gm.means_.shape[0]
    if not is_bayesian(gm):
        return list(range(n_components))
    return [k for k in range(n_components) if gm.weights_[k] >= ACTIVE_WEIGHT]


def mixture_title(gm) -> str:
    """'3-component Gaussian mixture', or for a Bayesian mixture how many
    of its components are in use."""
    n_components = gm.means_.shape[0]
    if is_bayesian(gm):
        return (f"Bayesian mixture: {len(shown_components(gm))} of {n_components} "
                "components in use")
    return f"{n_components}-component Gaussian mixture"


def feature_labels(gm, X, feature_names, n_features: int) -> list[str]:
    """The axis labels of the features: the names given, else the columns
    of a data frame X, else the names the model was fitted with
    (``feature_names_in_``, set by scikit-learn on a data frame), else
    "feature 0", "feature 1", ...

    X's columns are read without importing pandas (which may not be
    installed): anything with a ``columns`` attribute names its columns.
    """
    for names in (feature_names, getattr(X, "columns", None),
                  getattr(gm, "feature_names_in_", None)):
        if names is not None:
            names = [str(name) for name in names]
            if len(names) != n_features:
                raise ValueError(f"got {len(names)} feature names for "
                                 f"{n_features} features: {names}")
            return names
    return [f"feature {i}" for i in range(n_features)]


def predict_labels(gm, points) -> np.ndarray:
    """``gm.predict`` of the points drawn. They are an array even for a model
    fitted on a data frame, whose names already label the axes: scikit-learn's
    warning that X has no feature names would be about the plot's own
    conversion, not about the caller's data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return gm.predict(points)


def component_color(k: int) -> str:
    # tab10 keeps neighbouring components distinguishable; beyond ten
    # components the colours repeat, which is acceptable for a quick look.
    return f"C{k % 10}"


def scatter_points(ax, x, y, color, **style):
    """A component's points as one layer below its ellipses. The layer is
    rasterised: in an SVG or PDF tens of thousands of vector markers
    weigh megabytes and are slow to display."""
    return ax.scatter(x, y, color=color, edgecolors="none", zorder=POINTS_ZORDER,
                      rasterized=True, **style)


def _outlined(linewidth):
    # A white edge on either side of the coloured line: over points of its
    # own colour the line would otherwise vanish (a black edge would hide
    # the colour that tells the components apart).
    from matplotlib import patheffects
    return [patheffects.withStroke(linewidth=linewidth + 1.6, foreground="white")]


def draw_component(ax, mean, cov, color, linewidth=1.6, markersize=11):
    """A component's 1- and 2-sigma ellipses (of the 2x2 covariance ``cov``
    of the two features drawn) and its mean, over the points."""
    from matplotlib.patches import Ellipse

    for n_sigma in _SIGMAS:
        width, height, angle = _ellipse_geometry(cov, n_sigma)
        ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False,
                             edgecolor=color, linewidth=linewidth,
                             linestyle=_SIGMA_STYLES[n_sigma], zorder=ELLIPSE_ZORDER,
                             path_effects=_outlined(linewidth)))
    ax.plot(mean[0], mean[1], marker="X", markersize=markersize, color=color,
            markeredgecolor="black", linestyle="none", zorder=MEAN_ZORDER)


def legend_handles(gm) -> list:
    """Legend entries for the drawn components (numbered as ``predict``
    labels them, from 0, with their weights), the two ellipses' line
    styles and the mean's marker."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="none", color=component_color(k),
                      label=f"component {k} (weight {gm.weights_[k]:.2f})")
               for k in shown_components(gm)]
    handles += [Line2D([], [], color="gray", linestyle=_SIGMA_STYLES[s],
                       label=f"{s:g}-sigma ellipse")
                for s in _SIGMAS]
    handles.append(Line2D([], [], marker="X", markersize=9, linestyle="none",
                          color="white", markeredgecolor="black", label="mean"))
    return handles


def plot_mixture_2d(gm: GaussianMixture, X: ArrayLike, ax: Axes | None = None,
                    feature_names: Sequence[str] | None = None) -> Figure:
    """Scatter two-dimensional data coloured by component, with the fitted
    components drawn as ellipses.

    Each point gets the colour of its most probable component
    (``gm.predict(X)``); each component is drawn as its 1- and 2-sigma
    ellipses (solid and dashed: the contours at Mahalanobis distance 1 and 2
    from the mean) with its mean marked, over the points. The legend numbers
    the components as ``predict`` labels them, from 0.

    Parameters
    ----------
    gm : GaussianMixture or BayesianGaussianMixture
        A mixture fitted on two features, of any ``covariance_type`` (of a
        Bayesian mixture, the components of weight ACTIVE_WEIGHT or more).
    X : array-like of shape (n_samples, 2)
        The points to draw.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into. By default a new figure is created with
        ``matplotlib.pyplot``.
    feature_names : sequence of two str, optional
        Axis labels. Default: the columns of X if it is a data frame, else
        the model's ``feature_names_in_`` if it has them, else "feature 0"
        and "feature 1".

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the axes.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If X or the mixture does not have exactly two features.
    """
    _import_matplotlib()

    points = np.asarray(X, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(
            f"plot_mixture_2d draws two-dimensional data, got X of shape {points.shape}"
        )
    if gm.means_.shape[1] != 2:
        raise ValueError(
            "plot_mixture_2d draws mixtures of two features, got one with "
            f"{gm.means_.shape[1]}"
        )
    names = feature_labels(gm, X, feature_names, 2)

    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7.0, 5.5), layout="constrained")
    else:
        fig = ax.figure

    labels = predict_labels(gm, points)
    covariances = component_covariances(gm)
    for k in shown_components(gm):
        members = points[labels == k]
        scatter_points(ax, members[:, 0], members[:, 1], component_color(k),
                       s=14, alpha=0.6)
        draw_component(ax, gm.means_[k], covariances[k], component_color(k))

    ax.legend(handles=legend_handles(gm), loc="best", fontsize="small", framealpha=0.9)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(f"{mixture_title(gm)} ({gm.covariance_type} covariance)")
    ax.autoscale_view()
    return fig
