"""fastem.plot: every figure draws, headless, and saves PNG and SVG."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import fastem  # noqa: E402
from clitools import run_fastem  # noqa: E402
from fastem import plot  # noqa: E402


def _saved(fig, tmp_path, name):
    import matplotlib.pyplot as plt
    for ext in ("png", "svg"):
        path = tmp_path / f"{name}.{ext}"
        fig.savefig(path)
        assert path.stat().st_size > 1000
    plt.close(fig)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_mixture_picture_for_each_dimension(d, tmp_path):
    rng = np.random.default_rng(d)
    X = np.vstack([rng.normal(0, 1, (300, d)), rng.normal(4, 1, (300, d))])
    gm = fastem.GaussianMixture(2, random_state=0).fit(X)
    fig = plot.plot_mixture(gm, X)
    n_axes = {1: 1, 2: 1, 3: 9}[d]
    assert len(fig.axes) == n_axes
    _saved(fig, tmp_path, f"mixture{d}")


def test_density_1d_integrates_to_one():
    # the lecture notes' picture: 1-D two-component mixture
    rng = np.random.default_rng(0)
    n1 = rng.binomial(5000, 0.3)
    X = np.concatenate([rng.normal(1, 2, n1), rng.normal(9, 3, 5000 - n1)])[:, None]
    gm = fastem.GaussianMixture(2, random_state=0).fit(X)
    fig = plot.plot_density_1d(gm, X)
    mixture = next(line for line in fig.axes[0].lines if line.get_label() == "mixture")
    x, y = mixture.get_data()
    # the drawn density over the data's range holds almost all the mass
    assert 0.95 < np.trapezoid(y, x) <= 1.0 + 1e-9


def test_criterion_and_trace(tmp_path):
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    sel = fastem.select_model(X, n_components=range(1, 4),
                              covariance_types=("full", "diag"), random_state=0)
    fig = plot.plot_criterion(sel)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "full" in labels and "diag" in labels
    _saved(fig, tmp_path, "bic")
    fig = plot.plot_lower_bounds(sel.best_)
    assert len(fig.axes[0].lines[0].get_xdata()) == sel.best_.n_iter_
    _saved(fig, tmp_path, "trace")


def test_plot_command(tmp_path):
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    np.save(tmp_path / "X.npy", X)
    model = tmp_path / "m.npz"
    assert run_fastem("fit", tmp_path / "X.npy", "-k", 2, "--out", model).returncode == 0
    result = run_fastem("plot", model, tmp_path / "X.npy", "--out", tmp_path / "fig.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fig.png").stat().st_size > 1000
    result = run_fastem("plot", model, "--trace", "--out", tmp_path / "trace.svg")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("d", [2, 3])
def test_data_with_missing_values_draws(d, tmp_path):
    rng = np.random.default_rng(d)
    X = np.vstack([rng.normal(0, 1, (300, d)), rng.normal(4, 1, (300, d))])
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    gm = fastem.GaussianMixture(2, random_state=0, missing="em").fit(X)
    np.save(tmp_path / "gaps.npy", X)
    for data in (X, str(tmp_path / "gaps.npy")):  # in memory and streamed
        _saved(plot.plot_mixture(gm, data), tmp_path, f"gaps{d}")


def test_cross_validation_plot(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    sel = fastem.select_model(X, n_components=[1, 2, 3], covariance_types=("full", "diag"),
                              criterion="cv", cv=3, random_state=0)
    fig = plot.plot_criterion(sel)
    assert "higher is better" in fig.axes[0].get_ylabel()
    _saved(fig, tmp_path, "cv")


@pytest.mark.parametrize("d", [1, 2, 3])
def test_a_bayesian_mixture_draws_its_components_in_use(d, tmp_path):
    from matplotlib.patches import Ellipse
    rng = np.random.default_rng(d)
    X = np.vstack([rng.normal(0, 1, (300, d)), rng.normal(6, 1, (300, d))])
    bgm = fastem.BayesianGaussianMixture(n_components=6, random_state=0, max_iter=300,
                                         weight_concentration_prior=1e-3).fit(X)
    in_use = int(np.sum(bgm.weights_ >= 0.01))
    assert 2 <= in_use < 6
    fig = plot.plot_mixture(bgm, X)
    title = fig.axes[0].get_title() if d < 3 else fig.get_suptitle()
    assert f"{in_use} of 6 components in use" in title
    if d > 1:
        # two ellipses (1 and 2 sigma) per component in use (for pairs, in
        # the panel of features 1 and 0)
        panel = fig.axes[0] if d == 2 else fig.axes[1]
        assert sum(isinstance(p, Ellipse) for p in panel.patches) == 2 * in_use
    if d == 1:
        assert len(fig.axes[0].get_lines()) == in_use + 1  # and the mixture
    trace = plot.plot_lower_bounds(bgm)
    assert "lower bound" in trace.axes[0].get_ylabel()
    _saved(fig, tmp_path, f"bayesian{d}")
