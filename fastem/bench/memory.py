"""Peak memory a fit adds on top of its data, measured in fresh processes."""
import importlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastem.bench.libraries import adapter, libraries_for, library_threads, make_fitter
from fastem.bench.problems import Problem
from fastem.bench.workloads import Workload


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _maxrss_bytes()


def _maxrss_bytes():
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _reset_peak_rss():
    """Make the kernel's peak-RSS mark the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _maxrss_bytes()


def memory_probe(directory, library: str) -> None:
    """Child process (``python -m fastem.bench memory-probe DIR LIBRARY``):
    load the data, fit, and print the peak RSS the fit added as JSON."""
    directory = Path(directory)
    spec = json.loads((directory / "workload.json").read_text())
    workload = Workload.from_dict(spec)
    init = np.load(directory / "init.npz")
    # Imported before the data is loaded: what importing costs is not the fit's.
    for module in adapter(library).imports:
        importlib.import_module(module)
    X = np.load(directory / "X.npy")
    problem = Problem(workload, X, init["weights"], init["means"], init["precisions"])
    fit = make_fitter(library, problem)
    after_data = _rss_bytes()
    # ru_maxrss already holds the peak of the imports; resetting the mark
    # makes the reading after the fit the fit's own peak. Without the reset,
    # the difference is an upper bound.
    exact = _reset_peak_rss()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with library_threads(library, workload.n_threads):
            fit(2)
    peak = _peak_rss_bytes() if exact else _maxrss_bytes()
    print(json.dumps({"rss_after_data": after_data, "peak_rss": peak,
                      "extra_bytes": max(0, peak - after_data),
                      "method": "VmHWM reset after loading" if exact
                      else "ru_maxrss - RSS after loading"}))


def measure_memory(problem: Problem, timeout: float = 900) -> dict:
    """Peak memory a fit adds on top of its data, per library.

    Each library fits (``max_iter=2``: the second iteration allocates what
    the first did) in a fresh process that first loads the data from a
    ``.npy`` file, so neither this process's heap nor the data generator's
    temporaries count. fastem should add O(chunk x (D + K) x threads +
    K x D^2); scikit-learn adds N x K arrays.
    """
    w = problem.workload
    D, K = w.n_features, w.n_components
    model_floats = {"full": K * D * D, "tied": D * D, "diag": K * D, "spherical": K}
    out = {"workload": w.name, "data_bytes": w.data_bytes,
           "model_bytes": 8 * (model_floats[w.covariance_type] + K * D + K),
           "libraries": {}}
    with tempfile.TemporaryDirectory(prefix="fastem-bench-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "X.npy", problem.X)
        np.savez(tmp / "init.npz", weights=problem.weights_init,
                 means=problem.means_init, precisions=problem.precisions_init)
        (tmp / "workload.json").write_text(json.dumps(w.to_dict()))
        # Side by side: each process's RSS is its own, and nothing is timed.
        procs = {
            lib: subprocess.Popen(
                [sys.executable, "-m", "fastem.bench", "memory-probe", str(tmp), lib],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for lib in libraries_for(w)
        }
        for lib, proc in procs.items():
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                out["libraries"][lib] = {"error": [f"timed out after {timeout} s"]}
                continue
            if proc.returncode != 0:
                out["libraries"][lib] = {"error": stderr.strip().splitlines()[-1:]}
                continue
            entry = json.loads(stdout.strip().splitlines()[-1])
            entry["extra_over_data"] = entry["extra_bytes"] / w.data_bytes
            out["libraries"][lib] = entry
    return out
