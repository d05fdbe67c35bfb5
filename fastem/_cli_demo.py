"""``fastem demo``: mixtures of K = 1, 2, ... components fitted to the
bundled Old Faithful data, the BIC table, the chosen model and its picture."""
import importlib.util
import warnings

_FAITHFUL_AXIS_LABELS = (
    "eruptions: eruption duration (min)",
    "waiting: time to next eruption (min)",
)


def _fit_over_k(X, max_components, seed, n_init=3):
    from sklearn.exceptions import ConvergenceWarning

    import fastem

    models = []
    # A model that stops at max_iter is reported in the table's "converged"
    # column; the warning would only repeat it less readably.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(1, max_components + 1):
            gm = fastem.GaussianMixture(
                n_components=k, covariance_type="full", n_init=n_init,
                random_state=seed,
            )
            models.append(gm.fit(X))
    return models


def _format_bic_table(rows, best):
    lines = [f"  {'K':>3}  {'loglik/sample':>13}  {'BIC':>10}  {'AIC':>10}  "
             f"{'n_iter':>6}  {'converged':>9}"]
    for i, (k, loglik, bic, aic, n_iter, converged) in enumerate(rows):
        mark = "*" if i == best else " "
        lines.append(f"{mark} {k:>3}  {loglik:>13.5f}  {bic:>10.3f}  "
                     f"{aic:>10.3f}  {n_iter:>6d}  "
                     f"{'yes' if converged else 'no':>9}")
    lines.append("* minimum BIC")
    return "\n".join(lines)


def _format_model(gm, feature_names):
    import numpy as np

    name_width = max(len(name) for name in feature_names)
    values = np.concatenate([gm.means_.ravel(), gm.covariances_.ravel()])
    col_width = max(max(len(name) for name in feature_names),
                    max(len(f"{v:.4f}") for v in values)) + 2
    indent = " " * 4
    label_width = max(len("covariance"), name_width + len(indent))

    def row(label, cells):
        cells = "".join(f"{c:>{col_width}}" for c in cells)
        return f"  {label:<{label_width}}{cells}".rstrip()

    lines = []
    for k in range(gm.n_components):
        lines.append(f"component {k}: weight {gm.weights_[k]:.4f}")
        lines.append(row("", feature_names))
        lines.append(row("mean", [f"{v:.4f}" for v in gm.means_[k]]))
        lines.append(row("covariance", []))
        for name, cov_row in zip(feature_names, gm.covariances_[k]):
            lines.append(row(indent + name, [f"{v:.4f}" for v in cov_row]))
    return "\n".join(lines)


def _write_plot(gm, X, bic, path):
    import matplotlib

    # Select a non-interactive backend before pyplot is imported, so the
    # demo runs without a display.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastem._plotting import plot_mixture_2d

    fig = plot_mixture_2d(gm, X, feature_names=_FAITHFUL_AXIS_LABELS)
    try:
        fig.axes[0].set_title(
            f"Old Faithful: Gaussian mixture, K = {gm.n_components}, "
            f"BIC = {bic:.1f}"
        )
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def run_demo(args):
    import numpy as np

    from fastem.datasets import FAITHFUL_COLUMNS, load_faithful

    X = load_faithful()
    n_samples, n_features = X.shape
    if args.max_components > n_samples:
        raise ValueError(
            f"--max-components must be at most the number of samples "
            f"({n_samples}), got {args.max_components}"
        )
    n_init = 3
    print(f"Old Faithful geyser data: {n_samples} eruptions, "
          f"{n_features} features ({', '.join(FAITHFUL_COLUMNS)}; minutes)")
    print(f"Gaussian mixtures, full covariance, K = 1..{args.max_components}, "
          f"n_init={n_init}, seed={args.seed}")
    print()

    models = _fit_over_k(X, args.max_components, args.seed, n_init=n_init)
    # The log-likelihood of the final parameters, of which BIC and AIC are,
    # as select_model prints it (lower_bound_ is of the parameters before the
    # last M-step)
    criteria = [gm._information_criteria(gm._validate_predict_data(X)) for gm in models]
    rows = [(gm.n_components, crit["log_likelihood"] / n_samples, crit["bic"], crit["aic"],
             gm.n_iter_, gm.converged_) for gm, crit in zip(models, criteria)]
    best = int(np.argmin([r[2] for r in rows]))
    chosen = models[best]
    print(_format_bic_table(rows, best))
    print()
    print(f"Chosen model (minimum BIC): K = {chosen.n_components}, "
          f"BIC = {rows[best][2]:.3f}")
    print(_format_model(chosen, FAITHFUL_COLUMNS))
    print()

    if importlib.util.find_spec("matplotlib") is None:
        print("plot skipped: matplotlib is not installed "
              "(pip install 'fastem[plot]')")
    else:
        _write_plot(chosen, X, rows[best][2], args.out)
        print(f"plot written to {args.out}")
    return 0
