import pytest

import fastem.bench

_ROOFLINE = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def benchmarks_disabled(request):
    """True when benchmarks only run once as smoke tests."""
    # pyproject's addopts always passes --benchmark-disable, so a timing run
    # adds --benchmark-enable; pytest-benchmark lets the second win, and so
    # must we, or a timing run would time the quick-sized data.
    config = request.config
    return bool(config.getoption("benchmark_disable")
                and not config.getoption("benchmark_enable"))


@pytest.fixture(scope="session")
def roofline(request, benchmarks_disabled):
    """This machine's dgemm/sgemm rate, read bandwidth and exp rate."""
    roof = fastem.bench.measure_roofline(quick=benchmarks_disabled)
    request.config.stash[_ROOFLINE] = roof
    return roof


def pytest_benchmark_update_machine_info(config, machine_info):
    # pytest-benchmark records the CPU and Python; timings here depend as
    # much on thread counts, OpenMP and which BLAS kernels scikit-learn runs.
    machine_info["fastem"] = fastem.bench.machine_info()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # The roofline goes here, not into machine_info: its figures change from
    # run to run, and pytest-benchmark warns on any machine_info difference.
    output_json["fastem_roofline"] = config.stash.get(_ROOFLINE, None)
    # Each workload (and each scoring method) is one benchmark group with
    # one entry per library; the saved JSON carries fastem's speed-ups so
    # that comparing runs needs no recomputation.
    by_group = {}
    for bench in output_json["benchmarks"]:
        library = bench.get("extra_info", {}).get("library")
        by_group.setdefault(bench["group"], {})[library] = bench
    for entries in by_group.values():
        ours = entries.get("fastem")
        if ours is None or "seconds" not in ours["extra_info"]:
            continue
        for peer in ("sklearn", "daal4py"):
            theirs = entries.get(peer)
            if theirs is not None and "seconds" in theirs["extra_info"]:
                ours["extra_info"][f"speedup_vs_{peer}"] = (
                    theirs["extra_info"]["seconds"] / ours["extra_info"]["seconds"]
                )
