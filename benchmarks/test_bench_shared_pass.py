"""select_model on data read from disk: candidates fitted one after another
against shared passes (every block read once for all candidates still
iterating), K = 1..8 x full and diag on a float32 .npy.

The file is read through a reader that drops each block from the page
cache after reading it (posix_fadvise DONTNEED), as if the file were larger
than the memory left for the cache: every pass reads from the disk. Reported:
wall time, bytes read, and reads per candidate-iteration (bytes read over
the file's size times the candidates' iterations).

Timing run: ``pytest benchmarks/test_bench_shared_pass.py --benchmark-enable``
(2,000,000 x 16 float32, 128 MB). Disabled (the ordinary test run), a small
file checks that both give the same table.
"""
import os
import time

import numpy as np
import pytest

import fastem

CANDIDATES = dict(n_components=range(1, 9), covariance_types=("full", "diag"))


class ColdFile:
    """Rows of a C-ordered .npy file, read with pread and then dropped from
    the page cache; counts the bytes read."""

    def __init__(self, path):
        array = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.offset = array.shape, array.dtype, array.offset
        self.row_bytes = self.dtype.itemsize * self.shape[1]
        self.fd = os.open(path, os.O_RDONLY)
        self.bytes_read = 0

    def __getitem__(self, rows):
        start, stop, _ = rows.indices(self.shape[0])
        begin, size = self.offset + start * self.row_bytes, (stop - start) * self.row_bytes
        data = os.pread(self.fd, size, begin)
        os.posix_fadvise(self.fd, begin, size, os.POSIX_FADV_DONTNEED)
        self.bytes_read += len(data)
        return np.frombuffer(data, dtype=self.dtype).reshape(stop - start, self.shape[1])

    def close(self):
        os.close(self.fd)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, benchmarks_disabled):
    n = 20_000 if benchmarks_disabled else 2_000_000
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4.0, size=(4, 16))
    X = (centers[rng.integers(4, size=n)] + rng.normal(size=(n, 16))).astype(np.float32)
    path = tmp_path_factory.mktemp("shared") / "X.npy"
    np.save(path, X)
    return str(path), X.nbytes


def _select(path, shared):
    cold = ColdFile(path)
    start = time.perf_counter()
    selection = fastem.select_model(fastem.Streamed(cold), shared_pass=shared,
                                    random_state=0, tol=1e-3, **CANDIDATES)
    seconds = time.perf_counter() - start
    cold.close()
    return selection, seconds, cold.bytes_read


@pytest.mark.parametrize("shared", [False, True], ids=["one-after-another", "shared"])
def test_select_model_reads(benchmark, data_file, shared, benchmarks_disabled):
    path, size = data_file
    selection, seconds, bytes_read = _select(path, shared)
    iterations = sum(row["n_iter"] for row in selection.table)
    benchmark.group = "select_model, K = 1..8 x full, diag, data read from disk"
    benchmark.extra_info.update(
        library="fastem-shared" if shared else "fastem", seconds=seconds,
        bytes_read=bytes_read, file_bytes=size, candidate_iterations=iterations,
        reads_per_candidate_iteration=bytes_read / size / iterations)
    benchmark.pedantic(lambda: selection, rounds=1, iterations=1)
    other, _, other_bytes = _select(path, not shared)
    for a, b in zip(selection.table, other.table, strict=True):
        assert (a["bic"], a["n_iter"]) == (b["bic"], b["n_iter"])
    if shared:
        assert bytes_read < other_bytes
