"""The ``fastem`` command's argument parser and the types of its options."""
import argparse
import sys


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
    reading.add_argument("--dataset", metavar="NAME", help="dataset inside an HDF5 file")
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
    predict.add_argument("--out", metavar="FILE",
                         help="write .npy or .csv instead of printing")

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
    impute.add_argument("--out", metavar="FILE", required=True,
                        help="completed data to write (.npy or .csv)")

    info = commands.add_parser(
        "info", parents=[common], help="describe a saved model",
        description="Print a model file's settings, fit summary and parameters.",
    )
    info.add_argument("model", metavar="MODEL", help="a model file from 'fastem fit'")

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
