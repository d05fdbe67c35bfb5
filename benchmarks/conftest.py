import pytest

import em_workloads


@pytest.fixture(scope="session")
def benchmarks_disabled(request):
    """True when benchmarks only run once as smoke tests."""
    # pyproject's addopts always passes --benchmark-disable, so a timing run
    # adds --benchmark-enable; pytest-benchmark lets the second win, and so
    # must we, or a timing run would time the smoke-sized data.
    config = request.config
    return bool(config.getoption("benchmark_disable")
                and not config.getoption("benchmark_enable"))


def pytest_benchmark_update_machine_info(config, machine_info):
    # pytest-benchmark records the CPU and Python; timings here depend as
    # much on the thread counts and on which BLAS scikit-learn runs on.
    machine_info["fastem"] = em_workloads.machine_info()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # Each workload is one benchmark group holding one entry per library;
    # the saved JSON carries the ratio so comparisons across runs need not
    # recompute it.
    by_group = {}
    for bench in output_json["benchmarks"]:
        library = bench.get("extra_info", {}).get("library")
        by_group.setdefault(bench["group"], {})[library] = bench
    for entries in by_group.values():
        ours, theirs = entries.get("fastem"), entries.get("sklearn")
        if ours is None or theirs is None:
            continue
        ours["extra_info"]["speedup_vs_sklearn"] = (
            theirs["stats"]["median"] / ours["stats"]["median"]
        )
