"""fastem.plot: every figure draws, headless, and saves PNG and SVG."""
import warnings

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


def _two_blobs(d, n=300, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (n, d)), rng.normal(5, 1, (n, d))])


def _scatter_panels(fig):
    # the panels with points (the pairwise plot's diagonal holds histograms)
    return [ax for ax in fig.axes if ax.collections]


def _legend_texts(fig):
    legends = fig.legends or [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [text.get_text() for legend in legends for text in legend.get_texts()]


@pytest.mark.parametrize("d", [2, 3])
def test_ellipses_and_means_are_drawn_over_the_points(d):
    # 20,000 points of a component's colour hid its ellipses, drawn first
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse
    X = _two_blobs(d, n=2000)
    fig = plot.plot_mixture(fastem.GaussianMixture(2, random_state=0).fit(X), X)
    panels = _scatter_panels(fig)
    assert len(panels) == {2: 1, 3: 6}[d]
    for ax in panels:
        points = max(c.get_zorder() for c in ax.collections)
        ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
        means = [line for line in ax.lines if line.get_marker() == "X"]
        assert len(ellipses) == 4 and len(means) == 2
        assert min(e.get_zorder() for e in ellipses) > points
        assert min(m.get_zorder() for m in means) > max(e.get_zorder() for e in ellipses)
        # an edge of another colour keeps a line visible over its own points
        assert all(e.get_path_effects() for e in ellipses)
    plt.close(fig)


def test_the_pairwise_plot_has_one_legend_for_the_figure():
    import matplotlib.pyplot as plt
    X = _two_blobs(3)
    gm = fastem.GaussianMixture(2, random_state=0).fit(X)
    fig = plot.plot_pairs(gm, X)
    assert len(fig.legends) == 1
    assert all(ax.get_legend() is None for ax in fig.axes)
    texts = _legend_texts(fig)
    for k in range(2):
        assert f"component {k} (weight {gm.weights_[k]:.2f})" in texts
    assert "1-sigma ellipse" in texts and "2-sigma ellipse" in texts
    plt.close(fig)


class _Frame:
    """What the plots may read of a pandas DataFrame (not a dependency):
    its column names and its values."""

    def __init__(self, values, columns):
        self.values, self.columns = values, columns

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)


def _axis_labels(fig):
    if len(fig.axes) == 1:
        ax = fig.axes[0]
        return [ax.get_xlabel()] + ([ax.get_ylabel()] if ax.get_ylabel() != "density" else [])
    d = round(len(fig.axes) ** 0.5)
    bottom, left = fig.axes[d * (d - 1):], fig.axes[::d]
    assert [ax.get_ylabel() for ax in left] == [ax.get_xlabel() for ax in bottom]
    return [ax.get_xlabel() for ax in bottom]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("source", ["argument", "data frame", "model"])
def test_axes_are_labelled_with_the_feature_names(d, source):
    import matplotlib.pyplot as plt
    X = _two_blobs(d)
    gm = fastem.GaussianMixture(2, random_state=0).fit(X)
    names = ["eruption (min)", "waiting (min)", "height (m)"][:d]
    if source == "argument":
        fig = (plot.plot_density_1d(gm, X, feature_names=names) if d == 1
               else plot.plot_mixture(gm, X, feature_names=names))
    elif source == "data frame":
        fig = plot.plot_mixture(gm, _Frame(X, names))
    else:
        gm.feature_names_in_ = np.array(names, dtype=object)  # as scikit-learn sets it
        with warnings.catch_warnings():
            # not "X does not have valid feature names": the plot's own
            # array of X is no mistake of the caller's
            warnings.simplefilter("error")
            fig = plot.plot_mixture(gm, X)
    assert _axis_labels(fig) == names
    plt.close(fig)


def test_features_without_names_are_numbered_and_wrong_names_refused():
    import matplotlib.pyplot as plt
    X = _two_blobs(3)
    gm = fastem.GaussianMixture(2, random_state=0).fit(X)
    fig = plot.plot_pairs(gm, X)
    assert _axis_labels(fig) == ["feature 0", "feature 1", "feature 2"]
    plt.close(fig)
    with pytest.raises(ValueError, match="2 feature names for 3 features"):
        plot.plot_pairs(gm, X, feature_names=["a", "b"])
    plt.close("all")


@pytest.mark.parametrize("d", [1, 2, 3])
def test_components_are_numbered_as_predict_labels_them(d):
    import matplotlib.pyplot as plt
    X = _two_blobs(d)
    gm = fastem.GaussianMixture(2, random_state=0).fit(X)
    fig = plot.plot_mixture(gm, X)
    numbers = sorted(int(text.split()[1].rstrip(":"))
                     for text in _legend_texts(fig) if text.startswith("component "))
    assert numbers == sorted(set(gm.predict(X))) == [0, 1]
    if d == 2:
        # and component 0's colour is the colour of the points predict labels 0
        ax = fig.axes[0]
        handle = next(h for h, t in zip(ax.get_legend().legend_handles,
                                        ax.get_legend().get_texts(), strict=True)
                      if t.get_text().startswith("component 0 "))
        points = next(c for c in ax.collections
                      if np.allclose(c.get_facecolor()[0][:3],
                                     matplotlib.colors.to_rgb(handle.get_color())))
        np.testing.assert_array_equal(points.get_offsets(), X[gm.predict(X) == 0])
    plt.close(fig)


def _converged_trace():
    import matplotlib.pyplot as plt
    gm = fastem.GaussianMixture(2, random_state=0).fit(_two_blobs(2))
    # the bounds of a converged fit differ in their fifth decimal
    gm.lower_bounds_ = np.array([-4.15545, -4.15540, -4.155385, -4.155381, -4.15538])
    fig = plot.plot_lower_bounds(gm)
    fig.canvas.draw()
    plt.close(fig)
    return fig.axes[0]


def _visible_ticks(axis, ticks, labels):
    lo, hi = axis.get_view_interval()
    return [(t, label.get_text()) for t, label in zip(ticks, labels, strict=True)
            if lo <= t <= hi]


def test_trace_iterations_are_whole_numbers():
    ax = _converged_trace()
    ticks = _visible_ticks(ax.xaxis, ax.get_xticks(), ax.get_xticklabels())
    assert len(ticks) >= 2 and all(float(t).is_integer() for t, _ in ticks)


def test_trace_bounds_are_written_in_full():
    # not as steps of 1e-5 from an offset of -4.155 shown in the corner
    ax = _converged_trace()
    formatter = ax.yaxis.get_major_formatter()
    assert formatter.get_useOffset() is False and formatter.get_offset() == ""
    ticks = _visible_ticks(ax.yaxis, ax.get_yticks(), ax.get_yticklabels())
    assert len(ticks) >= 2
    for value, text in ticks:
        assert float(text.replace("\N{MINUS SIGN}", "-")) == pytest.approx(value, abs=1e-9)


def test_a_log_scaled_trace_keeps_its_formatter():
    import matplotlib.pyplot as plt
    gm = fastem.GaussianMixture(2, random_state=0).fit(_two_blobs(2))
    fig, ax = plt.subplots()
    ax.set_yscale("symlog")
    plot.plot_lower_bounds(gm, ax=ax)  # no error: this formatter has no offset
    plt.close(fig)


@pytest.mark.parametrize("d", [2, 3])
def test_scatter_layers_are_rasterised(d):
    import matplotlib.pyplot as plt
    X = _two_blobs(d)
    fig = plot.plot_mixture(fastem.GaussianMixture(2, random_state=0).fit(X), X)
    layers = [c for ax in _scatter_panels(fig) for c in ax.collections]
    assert layers and all(c.get_rasterized() for c in layers)
    plt.close(fig)


def test_a_pairwise_plot_of_20000_points_saves_small(tmp_path):
    # six features of 20,000 points: a PNG near 0.65 MB and an SVG near
    # 0.8 MB (drawn as vector points on 2.6-inch panels: 1.1 MB and 97 MB)
    import struct

    import matplotlib.pyplot as plt
    X = _two_blobs(6, n=10_000)
    fig = plot.plot_pairs(fastem.GaussianMixture(2, random_state=0).fit(X), X)
    for ext, bound in (("png", 850_000), ("svg", 1_500_000)):
        path = tmp_path / f"pairs.{ext}"
        fig.savefig(path)
        assert path.stat().st_size < bound, ext
    # small by its content, not by a lower resolution
    width, height = struct.unpack(">II", (tmp_path / "pairs.png").read_bytes()[16:24])
    assert min(width, height) >= 1200
    plt.close(fig)


def test_plot_command_names_the_axes_by_the_csv_header(tmp_path, monkeypatch):
    from fastem import cli
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(5, 1, (100, 2))])
    data = tmp_path / "X.csv"
    np.savetxt(data, X, delimiter=",", header="eruption,waiting", comments="")
    fastem.GaussianMixture(2, random_state=0).fit(X).save(tmp_path / "m.npz")
    drawn = []
    original = plot.plot_mixture
    monkeypatch.setattr(plot, "plot_mixture",
                        lambda *a, **k: drawn.append(original(*a, **k)) or drawn[-1])
    assert cli.main(["plot", str(tmp_path / "m.npz"), str(data),
                     "--out", str(tmp_path / "p.png")]) == 0
    ax = drawn[0].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("eruption", "waiting")
