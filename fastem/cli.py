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
import os
import sys
import warnings
from pathlib import Path

from fastem._cli_parser import build_parser

# The modules the commands use are imported inside main, where a Ctrl-C
# while they load is one line, not a traceback (``import fastem`` itself
# defers NumPy, scikit-learn and the kernels to their first use).

# Errors a user can cause and fix (bad values, unreadable or unwritable
# files, a missing optional package): reported in one line, not a traceback.
USER_ERRORS = (ValueError, OSError, ImportError)

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


def _handlers():
    """The function of each command (its name in args.command)."""
    from fastem._cli_demo import run_demo
    return {"demo": run_demo, "bench": _run_bench, "fit": _run_fit,
            "predict": _run_predict, "impute": _run_impute, "info": _run_info,
            "plot": _run_plot}


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
        status = _handlers()[args.command](args)
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
