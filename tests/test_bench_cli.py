"""``fastem bench``: saving results and failing on a regression, run as a
user (or CI) runs it."""
import json
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

from clitools import run_fastem as run
from fastem import bench, cli
from fastem.bench import libraries


def doctor(source, destination, factor=None, **changes):
    """A copy of a saved result with every speed-up multiplied by ``factor``."""
    data = json.loads(Path(source).read_text())
    if factor is not None:
        for entry in data["workloads"].values():
            entry["speedup_vs_sklearn"] *= factor
    data.update(changes)
    Path(destination).write_text(json.dumps(data))
    return destination


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("bench")
    out = cwd / "results" / "out.json"
    result = run("bench", "--quick", "--workloads", "W5", "--rounds", "2",
                 "--save", out, cwd=cwd)
    return result, out


def test_bench_runs_and_saves(saved):
    result, out = saved
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"results saved to {out}" in result.stdout
    data = json.loads(out.read_text())
    assert data["schema"] == bench.SCHEMA
    assert data["quick"] is True
    assert list(data["workloads"]) == ["W5"]

    entry = data["workloads"]["W5"]
    assert entry["workload"]["n_samples"] == 10_000
    assert entry["agreement"]["fastem_ok"]
    assert entry["speedup_vs_sklearn"] > 0
    assert len(entry["speedup_rounds"]) == 2
    assert entry["speedup_noise"] >= 0
    assert entry["libraries"]["fastem"]["s_per_iter"] > 0
    assert entry["ideal"]["limit"] in ("flops", "bandwidth", "exp")
    assert entry["multiple_of_ideal"] > 0

    machine = data["machine"]
    for key in ("cpu_model", "cpu_family_model", "cpu_flags", "usable_cpus",
                "fastem_threads", "fastem_openmp", "threadpools", "versions"):
        assert key in machine
    assert data["roofline"]["dgemm_gflops_per_core"] > 0
    assert data["memory"]["workload"] == "W5"
    assert data["memory"]["libraries"]["fastem"]["extra_bytes"] >= 0
    assert data["scoring"]["predict_proba"]["fastem_s"] > 0

    # The printed table has the row and the columns the saved file has.
    assert "speed-up" in result.stdout and "x ideal" in result.stdout
    assert any(line.startswith("W5 ") for line in result.stdout.splitlines())


def test_compare_with_itself_passes(saved):
    _, out = saved
    result = run("bench", "--load", out, "--compare", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REGRESSED" not in result.stdout
    assert "+0.0%" in result.stdout


def test_compare_against_inflated_baseline_fails(saved, tmp_path):
    _, out = saved
    inflated = doctor(out, tmp_path / "inflated.json", factor=10.0)
    result = run("bench", "--load", out, "--compare", inflated)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSED" in result.stdout
    assert "fell beyond the threshold on W5" in result.stderr


def test_live_run_against_inflated_baseline_fails(saved, tmp_path):
    _, out = saved
    # a live 2-round run of W5 is noisy (its speed-up was seen 5x the saved
    # run's): inflate far beyond that, so the fall exceeds even the 80 % cap
    inflated = doctor(out, tmp_path / "inflated.json", factor=1000.0)
    again = tmp_path / "again.json"
    result = run("bench", "--quick", "--workloads", "W5", "--rounds", "2",
                 "--compare", inflated, "--save", again)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSED" in result.stdout
    assert "Traceback" not in result.stderr
    # the fall was confirmed by a second attempt, which the file keeps
    assert "W5: speed-up over scikit-learn fell beyond the threshold; running again" \
        in result.stderr
    assert "W5: run again after a first attempt at -" in result.stdout
    entry = json.loads(again.read_text())["workloads"]["W5"]
    assert entry["first_attempt"]["speedup_vs_sklearn"] > 0
    assert len(entry["speedup_rounds"]) == 2


def test_a_fall_not_seen_again_is_not_a_regression(saved):
    _, out = saved
    baseline = bench.load_result(out)
    first = bench.load_result(out)
    first["workloads"]["W5"]["speedup_vs_sklearn"] /= 10.0
    rows, failed = bench.compare(first, baseline)
    assert failed and bench.regressed(rows) == ["W5"]

    bench.merge_rerun(first, {"workloads": {"W5": bench.load_result(out)["workloads"]["W5"]},
                              "elapsed_s": 1.0})
    rows, failed = bench.compare(first, baseline)
    assert not failed
    (row,) = rows
    assert row["status"] == "ok (re-run)"
    assert row["change"] == pytest.approx(0.0)
    assert row["first_change"] == pytest.approx(-0.9)
    assert "W5: run again after a first attempt at -90.0%" in \
        bench.format_comparison(rows, out, baseline)

    # falling twice is a regression
    again = bench.load_result(out)
    again["workloads"]["W5"]["speedup_vs_sklearn"] /= 10.0
    bench.merge_rerun(first, again)
    rows, failed = bench.compare(first, baseline)
    assert failed and rows[0]["status"] == "REGRESSED"


def test_fixed_threshold_overrides_noise(saved, tmp_path):
    _, out = saved
    inflated = doctor(out, tmp_path / "inflated.json", factor=10.0)
    # A tenfold inflation is a 90 % fall: within 95 %, beyond 80 %.
    assert run("bench", "--load", out, "--compare", inflated,
               "--threshold", "95%").returncode == 0
    assert run("bench", "--load", out, "--compare", inflated,
               "--threshold", "0.8").returncode == 1


def test_quick_and_full_do_not_compare(saved, tmp_path, capsys):
    _, out = saved
    full = doctor(out, tmp_path / "full.json", quick=False)
    assert cli.main(["bench", "--load", str(out), "--compare", str(full)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastem: error: cannot compare a quick run with a full")
    # A new run refuses before spending any time on timings.
    assert cli.main(["bench", "--quick", "--compare", str(full)]) == 1
    assert "drop --quick" in capsys.readouterr().err


def test_wrong_answer_fails(saved, tmp_path, capsys):
    _, out = saved
    data = json.loads(out.read_text())
    data["workloads"]["W5"]["agreement"]["fastem_ok"] = False
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(data))
    assert cli.main(["bench", "--load", str(wrong)]) == 1
    assert "disagree with scikit-learn's on W5" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--workloads", "W9"], "unknown workload(s) W9"),
    (["--threshold", "20"], "between 0 and 1"),
    (["--threshold", "lots"], "expected AUTO"),
    (["--rounds", "0"], "must be at least 1"),
])
def test_bad_options(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_not_a_result(tmp_path, capsys):
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"hello": 1}')
    assert cli.main(["bench", "--load", str(bogus)]) == 1
    assert "not a fastem bench result" in capsys.readouterr().err


def test_machine_differences_name_the_cpu_generation(saved):
    # two CPUs of one model name ("AMD EPYC") are told apart by family/model;
    # a result that does not record it is not called different
    _, out = saved
    data = json.loads(out.read_text())
    other = json.loads(out.read_text())
    assert bench.machine_differences(data, other) == []
    other["machine"]["cpu_family_model"] = "family 99 model 1"
    diffs = bench.machine_differences(data, other)
    assert len(diffs) == 1 and "family 99 model 1" in diffs[0]
    other["machine"].pop("cpu_family_model")
    assert bench.machine_differences(data, other) == []


def test_threshold_rule():
    quiet = {"speedup_noise": 0.01}
    noisy = {"speedup_noise": 0.3}
    very_noisy = {"speedup_noise": 5.0}
    assert bench.auto_threshold(quiet, quiet) == bench.THRESHOLD_FLOOR
    assert bench.auto_threshold(quiet, noisy) == pytest.approx(bench.THRESHOLD_K * 0.3)
    assert bench.auto_threshold(very_noisy, quiet) == bench.THRESHOLD_CAP


def test_pass_scaling_times_the_pass_on_one_and_all_threads():
    w = bench.select_workloads(["W1"], quick=True)[0]
    problem = bench.make_problem(w)
    model = bench.make_estimator("fastem", problem, max_iter=1)
    with pytest.warns(ConvergenceWarning):
        model.fit(problem.X)
    out = bench.time_pass_scaling(problem, {"fastem": model}, repeats=2)
    assert out["threads"] == w.threads and out["repeats"] == 2
    assert out["one_thread_s"] > 0 and out["all_threads_s"] > 0
    assert out["speedup"] == pytest.approx(out["one_thread_s"] / out["all_threads_s"])
    derived = bench.scaling.derived({"W1": {"libraries": {"fastem": {"s_per_iter": 1.0}},
                                            "threads": w.threads, "pass_scaling": out}})
    assert [v for k, v in derived.items() if "pass alone" in k] == [out["speedup"]]


def test_load_refuses_run_options(saved, capsys):
    _, out = saved
    assert cli.main(["bench", "--load", str(out), "--no-rerun"]) == 1
    assert "--no-rerun apply to a new run" in capsys.readouterr().err


def test_a_peer_library_is_one_adapter(saved, monkeypatch):
    # scikit-learn registered again under another name stands in for a new peer:
    # registering it is all it takes to be timed, checked and reported
    class Twin(libraries.ScikitLearn):
        name = "twin"

    monkeypatch.setitem(libraries.ADAPTERS, "twin", Twin())
    w = bench.select_workloads(["W5"], quick=True)[0]
    entry = bench.time_workload(bench.make_problem(w), rounds=1)
    assert set(entry.pop("models")) >= {"fastem", "sklearn", "twin"}
    assert entry["libraries"]["twin"]["s_per_iter"] > 0
    assert entry["speedup_vs_twin"] > 0 and entry["twin_note"] is None
    assert "twin_max_rel_diff" in entry["agreement"] and entry["agreement"]["twin_ok"]

    _, out = saved
    result = bench.load_result(out)
    result["workloads"]["W5"] = entry
    report = bench.format_result(result)
    assert "twin s/it" in report and "vs twin = twin s/it / fastem s/it;" in report


def test_a_workload_is_one_entry(monkeypatch):
    extra = bench.Workload("W9", "tiny", 500, 3, 2, "diag")
    monkeypatch.setitem(bench.WORKLOADS, "W9", extra)
    assert bench.select_workloads(["w9"]) == [extra]
    assert cli.build_parser().parse_args(["bench", "--workloads", "W9"]).workloads == ["W9"]


def test_a_peer_that_fails_is_dropped_with_its_reason(monkeypatch):
    # oneDAL's em_gmm raises on some shapes ("Error during covariance
    # computation"): the workload is still timed on fastem and scikit-learn,
    # and the peer's column says why it is empty
    from fastem.bench import timing
    from fastem.bench.problems import make_problem
    from fastem.bench.workloads import WORKLOADS

    class Failing(libraries.Library):
        name = "failing"

        def unavailable(self, workload):
            return None

        def fitter(self, problem):
            def fit(max_iter):
                if max_iter > 1:
                    raise RuntimeError("Error during covariance computation\nDetails: ...")
                return None
            return fit

    adapters = {**libraries.ADAPTERS, "failing": Failing()}
    monkeypatch.setattr(libraries, "ADAPTERS", adapters)
    monkeypatch.setattr(timing, "ADAPTERS", adapters)
    problem = make_problem(WORKLOADS["W5"].quick())
    result = timing.time_workload(problem, rounds=2)
    assert set(result["libraries"]) == {"fastem", "sklearn"}
    assert result["speedup_vs_failing"] is None
    assert result["failing_note"] == ("failing failed on W5: "
                                      "Error during covariance computation")
    assert result["agreement"]["fastem_ok"]
