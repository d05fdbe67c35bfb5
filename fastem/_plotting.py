"""Plots of fitted mixtures (needs matplotlib: ``pip install fastem[plot]``)."""
from __future__ import annotations

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


def plot_mixture_2d(gm: GaussianMixture, X: ArrayLike, ax: Axes | None = None,
                    feature_names: Sequence[str] | None = None) -> Figure:
    """Scatter two-dimensional data coloured by component, with the fitted
    components drawn as ellipses.

    Each point gets the colour of its most probable component
    (``gm.predict(X)``); each component is drawn as its 1- and 2-sigma
    ellipses (solid and dashed: the contours at Mahalanobis distance 1 and 2
    from the mean) with its mean marked.

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
        Axis labels. Default "feature 0" and "feature 1".

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
    from matplotlib.lines import Line2D
    from matplotlib.patches import Ellipse

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(
            f"plot_mixture_2d draws two-dimensional data, got X of shape {X.shape}"
        )
    if gm.means_.shape[1] != 2:
        raise ValueError(
            "plot_mixture_2d draws mixtures of two features, got one with "
            f"{gm.means_.shape[1]}"
        )
    if feature_names is None:
        feature_names = ("feature 0", "feature 1")
    if len(feature_names) != 2:
        raise ValueError(f"feature_names needs two names, got {len(feature_names)}")

    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7.0, 5.5), layout="constrained")
    else:
        fig = ax.figure

    labels = gm.predict(X)
    n_components = gm.means_.shape[0]
    # tab10 keeps neighbouring components distinguishable; beyond ten
    # components the colours repeat, which is acceptable for a quick look.
    colors = [f"C{k % 10}" for k in range(n_components)]

    handles = []
    covariances = component_covariances(gm)
    for k in shown_components(gm):
        mean, cov = gm.means_[k], covariances[k]
        members = X[labels == k]
        ax.scatter(members[:, 0], members[:, 1], s=14, color=colors[k],
                   alpha=0.6, edgecolors="none")
        for n_sigma in _SIGMAS:
            width, height, angle = _ellipse_geometry(cov, n_sigma)
            ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False,
                                 edgecolor=colors[k], linewidth=1.6,
                                 linestyle=_SIGMA_STYLES[n_sigma]))
        ax.plot(mean[0], mean[1], marker="X", markersize=11, color=colors[k],
                markeredgecolor="black", linestyle="none")
        handles.append(Line2D([], [], marker="o", linestyle="none",
                              color=colors[k],
                              label=f"component {k + 1} "
                                    f"(weight {gm.weights_[k]:.2f})"))

    handles += [
        Line2D([], [], color="gray", linestyle=_SIGMA_STYLES[s],
               label=f"{s:g}-sigma ellipse")
        for s in _SIGMAS
    ]
    handles.append(Line2D([], [], marker="X", markersize=9, linestyle="none",
                          color="white", markeredgecolor="black", label="mean"))
    ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.9)
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(f"{mixture_title(gm)} ({gm.covariance_type} covariance)")
    ax.autoscale_view()
    return fig
