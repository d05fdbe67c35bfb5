"""The ``fastem`` command line.

Usage::

    fastem [--debug] [--version] COMMAND [options]

Commands
--------
demo
    Fit Gaussian mixtures with K = 1, 2, ... components to the bundled Old
    Faithful data, print the BIC over K and the chosen model, and draw it.
bench
    Time EM against scikit-learn (and daal4py) on fixed workloads, set the
    times against this machine's limits, save them as JSON and compare them
    with a baseline (docs/performance.md).
"""
import argparse
import importlib.util
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import fastem
from fastem import _bench
from fastem.datasets import FAITHFUL_COLUMNS, load_faithful

# Errors a user can cause and fix (bad values, unreadable or unwritable
# files, a missing optional package): reported in one line, not a traceback.
USER_ERRORS = (ValueError, OSError, ImportError)

_FAITHFUL_AXIS_LABELS = (
    "eruptions: eruption duration (min)",
    "waiting: time to next eruption (min)",
)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 2**32 - 1, got {value}"
        )
    return value


def _workload_names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {name.lower() for name in _bench.WORKLOADS}
    unknown = [name for name in names if name.lower() not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(_bench.WORKLOADS)}"
        )
    return names


def _threshold(text):
    """``auto`` (None), a fraction (0.2) or a percentage (20%)."""
    if text.strip().lower() == "auto":
        return None
    percent = text.strip().endswith("%")
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected AUTO, a fraction such as 0.2 or a percentage such as 20%, "
            f"got {text!r}"
        ) from None
    if percent:
        value /= 100.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"the allowed fall must be between 0 and 1 (0% and 100%), got {text!r}"
        )
    return value


def build_parser():
    """Return the ``argparse`` parser of the ``fastem`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="fastem",
        description="Fast EM for Gaussian mixture models.",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {fastem.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of errors")

    # Also accepted after the subcommand; SUPPRESS keeps the subparser from
    # resetting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of errors")

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", parents=[common],
        help="fit the bundled Old Faithful data, print BIC over K, plot the model",
        description=(
            "Fit Gaussian mixtures with full covariances and K = 1, 2, ... "
            "components (up to --max-components) to the Old Faithful "
            "geyser data (272 eruptions: duration and waiting time to the "
            "next one), print the BIC and AIC over K and the parameters of "
            "the minimum-BIC model, and draw that model if matplotlib is "
            "installed."
        ),
    )
    demo.add_argument("--out", metavar="PATH", default="faithful_gmm.png",
                      help="image to write; the format follows the extension "
                           "(default: %(default)s)")
    demo.add_argument("--max-components", metavar="K", type=_positive_int,
                      default=6, help="largest K tried (default: %(default)s)")
    demo.add_argument("--seed", type=_seed, default=0,
                      help="random_state of the fits (default: %(default)s)")
    demo.set_defaults(handler=_run_demo)

    bench = commands.add_parser(
        "bench", parents=[common],
        help="time EM against scikit-learn (and daal4py); compare with a baseline",
        description=(
            "Time 10 EM iterations from a fixed initialisation on each workload "
            "with fastem, scikit-learn and, when installed, daal4py, in the same "
            "rounds; report seconds per iteration, speed-ups, the multiple of "
            "this machine's ideal time, the peak memory of a fit and the "
            "scoring speed. Exits 1 when fastem's lower bounds disagree with "
            "scikit-learn's or, with --compare, when a workload's speed-up over "
            "scikit-learn falls by more than the threshold. See "
            "docs/performance.md."
        ),
    )
    bench.add_argument("--quick", action="store_true",
                       help="N cut a hundredfold (at least 10,000 rows): checks "
                            "that everything runs in a few minutes; the times mean little")
    bench.add_argument("--workloads", metavar="W1,W3,...", type=_workload_names,
                       help=f"workloads to run (default: all of "
                            f"{', '.join(_bench.WORKLOADS)})")
    bench.add_argument("--rounds", metavar="N", type=_positive_int,
                       help="timing rounds per workload (default: 3, or 5 with --quick)")
    bench.add_argument("--save", metavar="FILE.json",
                       help="write the results, machine information and noise "
                            "figures as JSON")
    bench.add_argument("--compare", metavar="BASELINE.json",
                       help="compare each workload's speed-up over scikit-learn "
                            "with a saved result; exit 1 on a regression")
    bench.add_argument("--threshold", metavar="AUTO|FRACTION", type=_threshold,
                       default=None,
                       help="allowed fall of a speed-up, e.g. 0.2 or 20%% (default: "
                            "AUTO, derived per workload from the measured "
                            "round-to-round noise)")
    bench.add_argument("--load", metavar="RESULT.json",
                       help="report (and --compare) a saved result instead of "
                            "running the suite")
    bench.set_defaults(handler=_run_bench)
    return parser


def _fit_over_k(X, max_components, seed, n_init=3):
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
        lines.append(f"component {k + 1}: weight {gm.weights_[k]:.4f}")
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


def _run_demo(args):
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
    rows = [(gm.n_components, gm.lower_bound_, gm.bic(X), gm.aic(X),
             gm.n_iter_, gm.converged_) for gm in models]
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


def _progress(line):
    print(line, file=sys.stderr, flush=True)


def _run_bench(args):
    # Read the baseline first: a bad path should not cost a full run.
    baseline = _bench.load_result(args.compare) if args.compare else None
    if args.load:
        given = [flag for flag, value in (("--quick", args.quick),
                                          ("--workloads", args.workloads),
                                          ("--rounds", args.rounds),
                                          ("--save", args.save)) if value]
        if given:
            raise ValueError(f"{', '.join(given)} apply to a new run, not to "
                             f"--load {args.load}")
        result = _bench.load_result(args.load)
    else:
        if baseline is not None and bool(baseline.get("quick")) != args.quick:
            raise ValueError(
                f"{args.compare} is a {'quick' if baseline.get('quick') else 'full'} "
                f"run; compare it with a run of the same mode "
                f"({'add' if baseline.get('quick') else 'drop'} --quick)"
            )
        result = _bench.run_suite(args.workloads, quick=args.quick, rounds=args.rounds,
                                  progress=_progress)
        if args.save:
            _bench.save_result(result, args.save)

    print(_bench.format_result(result))
    status = 0
    wrong = [name for name, entry in result["workloads"].items()
             if not entry["agreement"]["fastem_ok"]]
    if wrong:
        print(f"fastem: lower bounds disagree with scikit-learn's on {', '.join(wrong)}",
              file=sys.stderr)
        status = 1
    if baseline is not None:
        rows, failed = _bench.compare(result, baseline, args.threshold)
        print()
        print(_bench.format_comparison(rows, args.compare, baseline))
        for difference in _bench.machine_differences(result, baseline):
            print(f"note: machine differs from the baseline's: {difference}")
        regressed = [row["workload"] for row in rows if row["status"] == "REGRESSED"]
        if regressed:
            print(f"fastem: speed-up over scikit-learn fell beyond the threshold on "
                  f"{', '.join(regressed)}", file=sys.stderr)
        status = 1 if failed else status
    if args.save:
        print(f"\nresults saved to {args.save}")
    return status


def _one_line(exc):
    message = " ".join(str(exc).split())
    return message or type(exc).__name__


def main(argv=None):
    """Run the ``fastem`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        Exit status: 0 on success, 1 on an error in the input or
        environment, 2 on a usage error or when no command is given.
        (``--help``, ``--version`` and argparse's own usage errors exit
        through ``SystemExit``.)
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"fastem: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastem: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
