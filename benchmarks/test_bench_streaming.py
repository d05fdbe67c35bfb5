"""The streaming scale proof (benchmarks/streaming.py) on small sizes: runs
in the ordinary test run so the script never rots; the figures that matter
come from running the script itself on a multi-GB file."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import streaming

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


def test_streamed_and_in_memory_fits_of_a_file_agree(tmp_path):
    proof = streaming.scale_proof(str(tmp_path / "X.npy"), 60_000)
    s, m = proof["streamed"], proof["in_memory"]
    # the same float32 kernels over other block boundaries (the times of
    # so small a file are noise, and not checked)
    assert s["lower_bound"] == pytest.approx(m["lower_bound"], rel=1e-6)
    assert 0 < s["peak_rss_mb"] < 2000


@pytest.mark.parametrize("start", ["kmeans", "near-truth"])
def test_partial_fit_stream_reaches_the_full_batch_optimum(start):
    curve = streaming.stepwise_curve(start, n_rows=40_000, batch=2_000, passes=3)
    assert curve["passes_to_1_percent"] is not None
    assert curve["passes_to_1_percent"] <= 3
