"""Performance suite: fastem's EM against scikit-learn (and daal4py) on fixed
workloads, each time set against this machine's own limits.

``fastem bench`` and the pytest-benchmark suite under ``benchmarks/`` are
both built on this package and use only the names below;
docs/performance.md explains the method and the columns.

Every workload is seeded data plus fixed initial parameters, so all
libraries start from the same point and do the same work: ``tol=0`` and a
fixed ``max_iter``. Seconds per iteration are marginal, (t(10 iterations) -
t(1)) / 9, and every library is timed in the same rounds as fastem, so a
speed-up is a ratio the machine's load barely moves.

One module per concern:

=============  ==============================================================
workloads      the workloads by name (:data:`WORKLOADS`)
problems       a workload's seeded data and shared initial parameters
libraries      one adapter per library (fastem, scikit-learn, daal4py) and
               the check that their lower bounds agree
timing         interleaved rounds of fit(1) and fit(10); scoring times
roofline       this machine's dgemm, sgemm, read and exp rates; ideal times
scaling        fastem's EM pass on one thread and on all; derived speed-ups
memory         peak memory of a fit, in fresh processes
machine        CPU, threads, BLAS and versions recorded with every result
results        saving and loading results (the JSON schema :data:`SCHEMA`)
regression     the threshold rule, the comparison with a baseline, and the
               merge of a confirming re-run
suite          the whole run (:func:`run_suite`, :func:`rerun_regressed`)
report         the text tables
=============  ==============================================================

To add a workload, add one entry to ``WORKLOADS`` in workloads.py; it then
runs in ``fastem bench`` (and ``--workloads``), under pytest-benchmark and
in the saved JSON. To add a peer library, write one subclass of
:class:`libraries.Library` (how to fit from the shared initial parameters,
read back the lower bounds, set its threads, say when it cannot run) and
add an instance to ``ADAPTERS`` in libraries.py; it is then timed in the
same rounds and gets its own columns and JSON keys.
"""
from fastem.bench.libraries import (
    DAAL4PY_RTOL,
    LIBRARIES,
    RTOL,
    adapter,
    check_agreement,
    daal4py_unavailable,
    libraries_for,
    library_threads,
    lower_bounds,
    make_estimator,
    make_fitter,
)
from fastem.bench.machine import machine_differences, machine_info
from fastem.bench.memory import measure_memory
from fastem.bench.problems import Problem, make_problem
from fastem.bench.regression import (
    THRESHOLD_CAP,
    THRESHOLD_FLOOR,
    THRESHOLD_K,
    auto_threshold,
    compare,
    merge_rerun,
    regressed,
    threshold_calibration,
)
from fastem.bench.report import format_comparison, format_result
from fastem.bench.results import SCHEMA, load_result, save_result
from fastem.bench.roofline import ideal_time, measure_roofline, roofline_rates
from fastem.bench.scaling import time_pass_scaling
from fastem.bench.suite import rerun_regressed, run_suite
from fastem.bench.timing import SETTLE_SECONDS, time_scoring, time_workload
from fastem.bench.workloads import ITERATIONS, WORKLOADS, Workload, select_workloads

__all__ = [
    "DAAL4PY_RTOL",
    "ITERATIONS",
    "LIBRARIES",
    "RTOL",
    "SCHEMA",
    "SETTLE_SECONDS",
    "THRESHOLD_CAP",
    "THRESHOLD_FLOOR",
    "THRESHOLD_K",
    "WORKLOADS",
    "Problem",
    "Workload",
    "adapter",
    "auto_threshold",
    "check_agreement",
    "compare",
    "daal4py_unavailable",
    "format_comparison",
    "format_result",
    "ideal_time",
    "libraries_for",
    "library_threads",
    "load_result",
    "lower_bounds",
    "machine_differences",
    "machine_info",
    "make_estimator",
    "make_fitter",
    "make_problem",
    "measure_memory",
    "measure_roofline",
    "merge_rerun",
    "regressed",
    "rerun_regressed",
    "roofline_rates",
    "run_suite",
    "save_result",
    "select_workloads",
    "threshold_calibration",
    "time_pass_scaling",
    "time_scoring",
    "time_workload",
]
