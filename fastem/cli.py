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
fit
    Fit a mixture (or choose one over K and covariance types) to a data file
    and write a model file.
predict
    Labels or probabilities of a data file under a model file.
info
    Describe a model file.
plot
    Draw a model file over a data file, or its EM trace.
"""
import argparse
import importlib.util
import os
import sys
import warnings
from pathlib import Path

# The modules the commands use are imported inside main, where a Ctrl-C
# while they load is one line, not a traceback. (The fastem package itself,
# with NumPy and scikit-learn, is loaded before this module is.)

# Errors a user can cause and fix (bad values, unreadable or unwritable
# files, a missing optional package): reported in one line, not a traceback.
USER_ERRORS = (ValueError, OSError, ImportError)

_FAITHFUL_AXIS_LABELS = (
    "eruptions: eruption duration (min)",
    "waiting: time to next eruption (min)",
)


def _number(convert, valid, requirement):
    """An argparse type: text -> convert(text), which must satisfy valid."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {'integer' if convert is int else 'number'}: {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "at least 1")
_seed = _number(int, lambda v: 0 <= v < 2**32, "between 0 and 2**32 - 1")
_nonnegative_float = _number(float, lambda v: v >= 0, ">= 0")


def _workload_names(text):
    from fastem import bench

    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {name.lower() for name in bench.WORKLOADS}
    unknown = [name for name in names if name.lower() not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(bench.WORKLOADS)}"
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


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``--help`` shows the usage)."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def build_parser():
    """Return the ``argparse`` parser of the ``fastem`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from fastem import bench
    from fastem._version import __version__

    parser = _Parser(
        prog="fastem",
        description="Fast EM for Gaussian mixture models.",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of errors")

    # Also accepted after the subcommand; SUPPRESS keeps the subparser from
    # resetting a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of errors")

    # the options of the commands that read DATA and write files
    reading = argparse.ArgumentParser(add_help=False)
    header = reading.add_mutually_exclusive_group()
    header.add_argument("--header", action="store_const", const=True, default=None,
                        help="the first line of a CSV file names its columns")
    header.add_argument("--no-header", dest="header", action="store_const", const=False,
                        help="the first line of a CSV file is data (default: guessed, a "
                             "header when a cell of it is neither a number nor a missing "
                             "value; the output says which)")
    reading.add_argument("--columns", metavar="A,B|0,1",
                         help="the columns of DATA that are features: names (of a CSV "
                              "header or a Parquet file) or 0-based positions, separated "
                              "by commas (default: all, less a --weights column; the "
                              "index pandas writes with a frame is never one)")
    writing = argparse.ArgumentParser(add_help=False)
    writing.add_argument("--force", action="store_true",
                         help="replace an existing output file (never an input file)")

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

    bench_parser = commands.add_parser(
        "bench", parents=[common],
        help="time EM against scikit-learn (and daal4py); compare with a baseline",
        description=(
            "Time 10 EM iterations (3 on the D* workloads) from a fixed "
            "initialisation on each workload with fastem, scikit-learn and, "
            "when installed, daal4py, in the same rounds; report seconds per "
            "iteration, speed-ups, the multiple of this machine's ideal time, "
            "the peak memory of a fit and the scoring speed. Exits 1 when "
            "fastem's lower bounds disagree with scikit-learn's or, with "
            "--compare, when a workload's speed-up over scikit-learn falls by "
            "more than the threshold. See "
            "docs/performance.md."
        ),
    )
    bench_parser.add_argument("--quick", action="store_true",
                              help="N cut a hundredfold (at least 10,000 rows): checks "
                                   "that everything runs in a few minutes; the times mean little")
    bench_parser.add_argument("--workloads", metavar="W1,W3,...", type=_workload_names,
                              help=f"workloads to run (default: all of "
                                   f"{', '.join(bench.WORKLOADS)})")
    bench_parser.add_argument("--rounds", metavar="N", type=_positive_int,
                              help="timing rounds per workload (default: 3, or 5 with --quick)")
    bench_parser.add_argument("--save", metavar="FILE.json",
                              help="write the results, machine information and noise "
                                   "figures as JSON")
    bench_parser.add_argument("--compare", metavar="BASELINE.json",
                              help="compare each workload's speed-up over scikit-learn "
                                   "with a saved result; exit 1 on a regression")
    bench_parser.add_argument("--threshold", metavar="AUTO|FRACTION", type=_threshold,
                              default=None,
                              help="allowed fall of a speed-up, e.g. 0.2 or 20%% (default: "
                                   "AUTO, derived per workload from the measured "
                                   "round-to-round noise)")
    bench_parser.add_argument("--no-rerun", action="store_true",
                              help="with --compare: report a fall beyond the threshold at "
                                   "once instead of running that workload again to "
                                   "confirm it")
    bench_parser.add_argument("--load", metavar="RESULT.json",
                              help="report (and --compare) a saved result instead of "
                                   "running the suite")
    bench_parser.set_defaults(handler=_run_bench)

    fit = commands.add_parser(
        "fit", parents=[common, reading, writing],
        help="fit a Gaussian mixture to a data file and save the model",
        description=(
            "Fit a Gaussian mixture to DATA (.npy, .csv with or without a header "
            "row, .h5/.hdf5 with --dataset, .zarr, .parquet; .npy, HDF5 and Zarr "
            "are streamed, not loaded) and write the model file. With a range "
            "of K (-k 1:8) or several covariance types, every candidate is "
            "fitted, a table of BIC, AIC and ICL is printed and the best is "
            "saved."
        ),
    )
    fit.add_argument("data", metavar="DATA", help="the data file")
    fit.add_argument("-k", "--n-components", metavar="K", type=_k_range, required=True,
                     help="number of components, or a range LO:HI (inclusive) "
                          "to choose from")
    fit.add_argument("--covariance-type", metavar="TYPE", type=_covariance_types,
                     default=("full",),
                     help="full, tied, diag or spherical; several separated by "
                          "commas, or 'all', to choose from (default: full)")
    fit.add_argument("--criterion", choices=("bic", "aic", "icl", "cv"), default="bic",
                     help="what chooses among several candidates (default: bic); "
                          "cv: the held-out log-likelihood over --folds shuffled "
                          "folds, the winner refitted on all rows")
    fit.add_argument("--folds", metavar="N", type=_positive_int, default=5,
                     help="folds of --criterion cv (default: 5)")
    fit.add_argument("--max-iter", type=_positive_int, default=100,
                     help="EM iterations per initialisation (default: 100)")
    fit.add_argument("--tol", type=_nonnegative_float, default=1e-3,
                     help="convergence threshold on the mean log-likelihood "
                          "(default: 1e-3)")
    fit.add_argument("--n-init", type=_positive_int, default=1,
                     help="initialisations per model; the best is kept (default: 1)")
    fit.add_argument("--seed", type=_seed, default=None,
                     help="random_state, for a reproducible fit")
    fit.add_argument("--dataset", metavar="NAME", help="dataset inside an HDF5 file")
    fit.add_argument("--weights", metavar="FILE_OR_COLUMN",
                     help="row weights (a row of weight w counts as w rows): a "
                          ".npy, .csv or .parquet file of one weight per row, or "
                          "a column of DATA (CSV or Parquet) by name or 0-based "
                          "position, which is then not a feature")
    fit.add_argument("--missing", choices=("error", "em"), default="error",
                     help="'em': NaN (and empty CSV cells) are missing values, fitted "
                          "by EM on the observed coordinates; 'error' (default): "
                          "they are an error")
    fit.add_argument("--bayesian", action="store_true",
                     help="fit a variational Bayesian mixture "
                          "(BayesianGaussianMixture): K is the largest number of "
                          "components, and those the data do not need get weights "
                          "near 0")
    fit.add_argument("--prior-type", choices=("dirichlet_process", "dirichlet_distribution"),
                     default="dirichlet_process",
                     help="with --bayesian: the weights' prior (default: "
                          "dirichlet_process)")
    fit.add_argument("--weight-concentration-prior", metavar="GAMMA",
                     type=_number(float, lambda v: v > 0, "> 0"),
                     help="with --bayesian: the prior's concentration; smaller values "
                          "favour fewer components (default: 1/K)")
    fit.add_argument("--progress", action="store_true",
                     help="show progress bars (EM iterations with rows/s, not with "
                          "--bayesian; the candidates of a selection); needs tqdm")
    fit.add_argument("--out", metavar="MODEL",
                     help="model file to write (default: DATA's name without its "
                          "extension + .gmm.npz, in the working directory)")
    fit.set_defaults(handler=_run_fit)

    predict = commands.add_parser(
        "predict", parents=[common, reading, writing],
        help="labels or probabilities of a data file under a saved model",
        description=("Print (or write to --out, .npy or .csv) the most probable "
                     "component of every row of DATA, or with --proba the "
                     "probabilities of all components."),
    )
    predict.add_argument("model", metavar="MODEL", help="a model file from 'fastem fit'")
    predict.add_argument("data", metavar="DATA", help="the data file")
    predict.add_argument("--proba", action="store_true",
                         help="probabilities of every component instead of labels")
    predict.add_argument("--dataset", metavar="NAME", help="dataset inside an HDF5 file")
    predict.add_argument("--out", metavar="FILE",
                         help="write .npy or .csv instead of printing")
    predict.set_defaults(handler=_run_predict)

    impute = commands.add_parser(
        "impute", parents=[common, reading, writing],
        help="fill the missing values of a data file under a saved model",
        description=("Replace every missing value (NaN, or an empty CSV cell) of "
                     "DATA by its expectation under MODEL (fitted with --missing "
                     "em) given the row's observed values, and write the "
                     "completed data to --out (.npy or .csv)."),
    )
    impute.add_argument("model", metavar="MODEL", help="a model file from 'fastem fit'")
    impute.add_argument("data", metavar="DATA", help="the data file")
    impute.add_argument("--dataset", metavar="NAME", help="dataset inside an HDF5 file")
    impute.add_argument("--out", metavar="FILE", required=True,
                        help="completed data to write (.npy or .csv)")
    impute.set_defaults(handler=_run_impute)

    info = commands.add_parser(
        "info", parents=[common], help="describe a saved model",
        description="Print a model file's settings, fit summary and parameters.",
    )
    info.add_argument("model", metavar="MODEL", help="a model file from 'fastem fit'")
    info.set_defaults(handler=_run_info)

    plot = commands.add_parser(
        "plot", parents=[common, reading, writing], help="draw a saved model over a data file",
        description=("Draw MODEL over DATA: a histogram with the mixture density "
                     "for one feature, points with 1- and 2-sigma ellipses for "
                     "two, pairwise panels for more (at most 20,000 points, a "
                     "random subset); or with --trace the log-likelihood per "
                     "iteration. Needs matplotlib."),
    )
    plot.add_argument("model", metavar="MODEL", help="a model file from 'fastem fit'")
    plot.add_argument("data", metavar="DATA", nargs="?",
                      help="the data file (not needed with --trace)")
    plot.add_argument("--out", metavar="FILE", required=True,
                      help="image to write (.png, .svg, .pdf)")
    plot.add_argument("--trace", action="store_true",
                      help="draw the EM trace (lower_bounds_) instead")
    plot.add_argument("--dataset", metavar="NAME", help="dataset inside an HDF5 file")
    plot.set_defaults(handler=_run_plot)
    return parser


def _k_range(text):
    """'K' or 'LO:HI' (inclusive) -> list of int."""
    parts = text.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected K or LO:HI, such as 3 or 1:8, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or values[0] < 1 or values[1] < values[0]:
        raise argparse.ArgumentTypeError(
            f"expected K >= 1 or LO:HI with 1 <= LO <= HI, got {text!r}")
    return list(range(values[0], values[1] + 1))


def _covariance_types(text):
    from fastem._covariance import COVARIANCE_TYPES
    if text.strip().lower() == "all":
        return COVARIANCE_TYPES
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in COVARIANCE_TYPES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type(s) {', '.join(unknown) or repr(text)}; choose "
            f"from {', '.join(COVARIANCE_TYPES)} or 'all'")
    return names


def _default_model_path(data):
    # the whole stem: run.1.csv and run.2.csv must not both write run.gmm.npz
    return Path(data).stem + ".gmm.npz"


def _check_out(out, inputs, force, suffixes=None):
    """Refuse an output file, before any work, that would replace one of
    ``inputs`` ({role: path}), that exists (unless ``force``), that does not
    end in one of ``suffixes`` or that cannot be written."""
    for role, path in inputs.items():
        if path is not None and _same_file(out, path):
            raise ValueError(f"--out {out} is {role} {path}; choose another file to write")
    if suffixes and not str(out).endswith(suffixes):
        raise ValueError(f"--out {out}: write {' or '.join(suffixes)}")
    if os.path.isdir(out):
        raise IsADirectoryError(f"cannot write {out}: it is a directory")
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    directory = os.path.dirname(out) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {out}: no such directory {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {out}: {directory} is not writable")


def _same_file(a, b):
    """Whether two paths, however spelled, name one file (both existing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # (one does not exist)
        return False


def _run_fit(args):
    from sklearn.exceptions import ConvergenceWarning

    import fastem
    from fastem._cli_data import choose_columns, open_data

    params = dict(max_iter=args.max_iter, tol=args.tol, n_init=args.n_init,
                  random_state=args.seed)
    params.update(_model_params(args))
    out = args.out or _default_model_path(args.data)
    _check_out(out, {"the data file": args.data, "the weights file": args.weights},
               args.force)
    data = open_data(args.data, args.dataset, gaps=args.missing == "em", header=args.header)
    data, weights = choose_columns(data, args.columns, args.weights)
    print(data.report())
    X = data.X
    candidates = len(args.n_components) * len(args.covariance_type)
    if candidates > 1:
        selection = fastem.select_model(X, n_components=args.n_components,
                                        covariance_types=args.covariance_type,
                                        criterion=args.criterion,
                                        progress=args.progress, sample_weight=weights,
                                        cv=args.folds, bayesian=args.bayesian, **params)
        print(selection)
        print()
        gm = selection.best_
    else:
        if args.bayesian:
            gm = fastem.BayesianGaussianMixture(n_components=args.n_components[0],
                                                covariance_type=args.covariance_type[0],
                                                **params)
        else:
            gm = fastem.GaussianMixture(n_components=args.n_components[0],
                                        covariance_type=args.covariance_type[0],
                                        progress=args.progress, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                gm.fit(X, sample_weight=weights)
            except ValueError as exc:
                if "contains NaN" in str(exc) and args.missing != "em":
                    raise ValueError(f"{exc} To fit NaN as missing values, use "
                                     "--missing em.") from None
                raise
    print(_model_summary(gm, X, weights))
    gm.save(out)
    print(f"model written to {out}")
    return 0


def _model_params(args):
    """The parameters of ``fastem fit`` that depend on --bayesian."""
    if not args.bayesian:
        if args.weight_concentration_prior is not None or (
                args.prior_type != "dirichlet_process"):
            raise ValueError("--prior-type and --weight-concentration-prior need --bayesian")
        return {"missing": args.missing}
    if args.missing != "error":
        raise ValueError("--missing em is not available with --bayesian")
    return {"weight_concentration_prior_type": args.prior_type,
            "weight_concentration_prior": args.weight_concentration_prior}


def _model_summary(gm, X=None, sample_weight=None):
    from fastem._plotting import ACTIVE_WEIGHT, is_bayesian, shown_components

    converged = (f"  converged: {'yes' if gm.converged_ else 'no'} after {gm.n_iter_} "
                 "iterations; ")
    if is_bayesian(gm):
        lines = [f"Bayesian Gaussian mixture ({gm.weight_concentration_prior_type}): "
                 f"K = {gm.n_components} at most, {len(shown_components(gm))} with "
                 f"weight >= {ACTIVE_WEIGHT:g}; {gm.covariance_type} covariance, "
                 f"{gm.n_features_in_} features",
                 f"{converged}lower bound {gm.lower_bound_:.6f}"]
    else:
        lines = [f"Gaussian mixture: K = {gm.n_components}, {gm.covariance_type} "
                 f"covariance, {gm.n_features_in_} features",
                 f"{converged}mean log-likelihood {gm.lower_bound_:.6f}"]
    if X is not None:
        # one pass over the data for both (a streamed file is read once)
        data = gm._validate_predict_data(X).with_weights(sample_weight)
        crit = gm._information_criteria(data)
        if is_bayesian(gm):
            # (BIC would count the parameters of the components switched off)
            lines.append("  mean log-likelihood (score) "
                         f"{crit['log_likelihood'] / data.total_weight:.6f}")
        else:
            lines.append(f"  BIC {crit['bic']:.3f}  AIC {crit['aic']:.3f}")
    lines.append("  weights " + " ".join(f"{w:.4f}" for w in gm.weights_))
    return "\n".join(lines)


def _run_predict(args):
    import numpy as np

    import fastem

    if args.out is not None:
        _check_out(args.out, {"the model file": args.model, "the data file": args.data},
                   args.force, suffixes=(".npy", ".csv"))
    gm = fastem.load(args.model)
    data = _model_data(gm, args, gaps=gm._allow_nan())
    result = gm.predict_proba(data.X) if args.proba else gm.predict(data.X)
    if args.out is None:
        if args.proba:
            np.savetxt(sys.stdout, result, fmt="%.6g", delimiter=",")
        else:
            np.savetxt(sys.stdout, result, fmt="%d")
        # (stdout is the results'; said last, so that an error stays one line)
        print(data.report(), file=sys.stderr)
        return 0
    _write_array(args.out, result, "%.17g" if args.proba else "%d")
    print(data.report())
    print(f"{'probabilities' if args.proba else 'labels'} of {len(result)} rows "
          f"written to {args.out}")
    return 0


def _model_data(gm, args, gaps):
    """The features of args.data (its --columns) for the model gm, which
    must get as many as it was fitted on."""
    from fastem._cli_data import choose_columns, open_data

    data = open_data(args.data, args.dataset, gaps=gaps, header=args.header)
    data, _ = choose_columns(data, args.columns)
    if data.n_features != gm.n_features_in_:
        raise ValueError(f"{args.model} was fitted on {gm.n_features_in_} columns, but "
                         f"{args.data} gives {data.n_features} features; choose "
                         f"{gm.n_features_in_} with --columns")
    return data


def _write_array(path, values, fmt):
    """A .npy or .csv file of ``values``, replaced whole or not at all."""
    import numpy as np

    from fastem._atomic import atomic_write

    with atomic_write(path) as f:
        if str(path).endswith(".npy"):
            np.save(f, values)
        else:
            np.savetxt(f, values, fmt=fmt, delimiter=",")


def _run_impute(args):
    import fastem

    _check_out(args.out, {"the model file": args.model, "the data file": args.data},
               args.force, suffixes=(".npy", ".csv"))
    gm = fastem.load(args.model)
    if not hasattr(gm, "impute"):
        raise ValueError(f"{args.model} holds a {type(gm).__name__}, which has no missing "
                         "values to fill: impute needs a model fitted with --missing em")
    data = _model_data(gm, args, gaps=True)
    print(data.report())
    result = gm.impute(data.X)
    _write_array(args.out, result, "%.17g")
    n_gaps = _count_nan(data.X)
    print(f"{n_gaps} missing values of {len(result)} rows filled; written to {args.out}")
    return 0


def _count_nan(X):
    from contextlib import closing

    import numpy as np

    from fastem._sources import as_source
    with closing(as_source(X, allow_nan=True).blocks()) as blocks:
        return sum(int(np.count_nonzero(np.isnan(block))) for _, _, block in blocks)


def _run_plot(args):
    import fastem

    if not args.trace and args.data is None:
        raise ValueError("plot needs DATA (or --trace)")
    _check_out(args.out, {"the model file": args.model, "the data file": args.data},
               args.force)
    gm = fastem.load(args.model)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastem import plot

    if args.trace:
        fig = plot.plot_lower_bounds(gm)
    else:
        data = _model_data(gm, args, gaps=gm._allow_nan())
        print(data.report())
        # axes named by the CSV header or Parquet columns, when there are some
        fig = plot.plot_mixture(gm, data.X, feature_names=data.columns)
    try:
        fig.savefig(args.out, dpi=120)
    finally:
        plt.close(fig)
    print(f"plot written to {args.out}")
    return 0


def _run_info(args):
    import numpy as np

    import fastem

    gm = fastem.load(args.model)
    print(f"{args.model}")
    print(_model_summary(gm))
    # (array-valued settings, *_init and priors, are left out)
    params = {k: v for k, v in gm.get_params().items()
              if v is None or not isinstance(v, (np.ndarray, list, tuple))}
    print("  settings " + ", ".join(f"{k}={v!r}" for k, v in sorted(params.items())))
    np.set_printoptions(precision=4, suppress=True)
    print("  means\n" + "\n".join("    " + line for line in str(gm.means_).splitlines()))
    print("  covariances\n" + "\n".join(
        "    " + line for line in str(gm.covariances_).splitlines()))
    return 0


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


def _progress(line):
    print(line, file=sys.stderr, flush=True)


def _run_bench(args):
    from fastem import bench

    # Read the baseline first: a bad path should not cost a full run.
    baseline = bench.load_result(args.compare) if args.compare else None
    if args.load:
        given = [flag for flag, value in (("--quick", args.quick),
                                          ("--workloads", args.workloads),
                                          ("--rounds", args.rounds),
                                          ("--no-rerun", args.no_rerun),
                                          ("--save", args.save)) if value]
        if given:
            raise ValueError(f"{', '.join(given)} apply to a new run, not to "
                             f"--load {args.load}")
        result = bench.load_result(args.load)
    else:
        if baseline is not None and bool(baseline.get("quick")) != args.quick:
            raise ValueError(
                f"{args.compare} is a {'quick' if baseline.get('quick') else 'full'} "
                f"run; compare it with a run of the same mode "
                f"({'add' if baseline.get('quick') else 'drop'} --quick)"
            )
        result = bench.run_suite(args.workloads, quick=args.quick, rounds=args.rounds,
                                 progress=_progress)
        if baseline is not None and not args.no_rerun:
            bench.rerun_regressed(result, baseline, args.threshold, _progress)
        if args.save:
            bench.save_result(result, args.save)

    print(bench.format_result(result))
    status = 0
    wrong = [name for name, entry in result["workloads"].items()
             if not entry["agreement"]["fastem_ok"]]
    if wrong:
        print(f"fastem: lower bounds disagree with scikit-learn's on {', '.join(wrong)}",
              file=sys.stderr)
        status = 1
    if baseline is not None:
        rows, failed = bench.compare(result, baseline, args.threshold)
        print()
        print(bench.format_comparison(rows, args.compare, baseline))
        for difference in bench.machine_differences(result, baseline):
            print(f"note: machine differs from the baseline's: {difference}")
        regressed = bench.regressed(rows)
        if regressed:
            print(f"fastem: speed-up over scikit-learn fell beyond the threshold on "
                  f"{', '.join(regressed)}", file=sys.stderr)
        status = 1 if failed else status
    if args.save:
        print(f"\nresults saved to {args.save}")
    return status


def _one_line(exc):
    message = " ".join(str(exc).split())
    # (the library's messages start with the prefix the line already has)
    message = message.removeprefix("fastem: ")
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
        environment, 2 on a usage error or when no command is given, 130
        on Ctrl-C. (``--help``, ``--version`` and argparse's own usage
        errors exit through ``SystemExit``.) When the reader of the output
        goes away (``fastem predict ... | head``), fastem stops quietly
        with status 0: the reader had what it wanted, and a pipeline run
        with ``set -o pipefail`` does not fail for it.
    """
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("fastem: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return 0


def _run(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if _works_on_files(args):
        # its messages are not its product: a reader that goes away (fit
        # ... | head -1) must not stop the model or the file being written
        sys.stdout = _MessagesMayClose(sys.stdout)
    try:
        status = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at Python's exit
        return status
    except BrokenPipeError:
        raise  # an OSError, but none of the user's: main ends quietly
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"fastem: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _works_on_files(args):
    """Whether the command's product is files, its output only messages."""
    return (args.command in ("fit", "impute", "plot", "demo", "bench")
            or (args.command == "predict" and args.out is not None))


class _MessagesMayClose:
    """stdout for a command whose product is files: once the reader of its
    messages has gone, the rest go to devnull and the command goes on."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _discard_stdout()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            _discard_stdout()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _discard_stdout():
    # What stdout still buffers would go to the closed pipe when Python
    # flushes it at exit, and the failure would be reported then; devnull
    # takes it instead (the remedy of the signal module's documentation).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
