"""The whole suite: every selected workload timed, with the roofline, the
machine, fastem's scaling, peak memory and scoring, as one JSON-able dict."""
import time
from datetime import datetime, timezone

from fastem.bench.machine import machine_info
from fastem.bench.memory import measure_memory
from fastem.bench.problems import make_problem
from fastem.bench.regression import (
    THRESHOLD_CAP,
    THRESHOLD_FLOOR,
    THRESHOLD_K,
    compare,
    merge_rerun,
    regressed,
)
from fastem.bench.results import SCHEMA
from fastem.bench.roofline import measure_roofline
from fastem.bench.scaling import derived, time_pass_scaling
from fastem.bench.timing import time_scoring, time_workload
from fastem.bench.workloads import ITERATIONS, select_workloads


def _extras_workload(workloads):
    for w in workloads:
        if w.name == "W1":
            return w
    return workloads[0]


def run_suite(names=None, quick: bool = False, rounds: int | None = None,
              memory: bool = True, progress=None, roofline: dict | None = None) -> dict:
    """Run the suite and return its results as a JSON-able dict.

    Parameters
    ----------
    names : list of str, optional
        Workloads to run; default all.
    quick : bool
        N cut a hundredfold: checks that everything runs, times nothing
        that matters.
    rounds : int, optional
        Timing rounds per workload; default 3 (5 with ``quick``).
    memory : bool
        Also measure peak memory and predict/score timings, on W1 when it
        is selected, else on the first selected workload.
    progress : callable, optional
        Receives progress lines.
    roofline : dict, optional
        This machine's roofline from an earlier run, to measure the ideal
        time against; default: measured first.
    """
    workloads = select_workloads(names, quick)
    rounds = rounds if rounds is not None else (5 if quick else 3)
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    say = progress or (lambda line: None)
    started = time.perf_counter()

    if roofline is None:
        say("measuring this machine's roofline")
        roofline = measure_roofline(quick=quick)
    extras = _extras_workload(workloads)
    result = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "mode": ("quick: N / 100, checks that the suite runs; its speed-ups are not "
                 "those of full size" if quick else "full"),
        "iterations": ITERATIONS,
        "rounds": rounds,
        "machine": machine_info(),
        "roofline": roofline,
        "threshold_rule": {"floor": THRESHOLD_FLOOR, "k": THRESHOLD_K,
                           "cap": THRESHOLD_CAP,
                           "noise": "interquartile range / median of the "
                                    "per-round speed-ups over scikit-learn"},
        "workloads": {},
    }
    for w in workloads:
        say(f"{w.name} {w.title}: {w.shape_label()}")
        problem = make_problem(w)
        entry = time_workload(problem, rounds, roofline, progress)
        models = entry.pop("models")
        if w.name in ("W1", "W2") and w.threads > 1:
            say(f"  {w.name}: the EM pass alone, 1 and {w.threads} threads")
            entry["pass_scaling"] = time_pass_scaling(problem, models,
                                                      3 if quick else 10)
        if memory and w is extras:
            say(f"  {w.name}: predict_proba / score_samples")
            result["scoring"] = time_scoring(problem, models, rounds)
            say(f"  {w.name}: peak memory of a fit (fresh processes)")
            result["memory"] = measure_memory(problem)
        result["workloads"][w.name] = entry
        del problem, models
    result["derived"] = derived(result["workloads"])
    result["elapsed_s"] = time.perf_counter() - started
    return result


def rerun_regressed(result: dict, baseline: dict, threshold: float | None = None,
                    progress=None) -> list[str]:
    """Run the workloads of ``result`` that fell beyond the threshold against
    ``baseline`` again, in the same mode and rounds and against the same
    roofline, and merge them in (:func:`fastem.bench.merge_rerun`). Returns
    their names.
    """
    fell = regressed(compare(result, baseline, threshold)[0])
    if fell:
        if progress is not None:
            progress(f"{', '.join(fell)}: speed-up over scikit-learn fell beyond the "
                     f"threshold; running again to tell a regression from a "
                     f"disturbed run")
        merge_rerun(result, run_suite(fell, quick=result["quick"],
                                      rounds=result["rounds"], memory=False,
                                      progress=progress, roofline=result["roofline"]))
    return fell
