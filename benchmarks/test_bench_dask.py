"""benchmarks/dask_bench.py on small data in the ordinary test run, so the
script never rots; its figures come from running it at full size."""
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")
sys.path.insert(0, str(Path(__file__).parent))
import dask_bench


def test_dask_benchmark_runs_and_reports():
    result = dask_bench.measure(n_rows=20_000, n_features=4, n_components=3, blocks=4,
                                repeats=1)
    times = [v for k, v in result.items() if k.startswith(("in_", "local", "cluster", "over"))]
    assert len(times) == 8 and all(math.isfinite(t) for t in times)
    assert "scheduling overhead" in dask_bench.report(result)
