"""Ctrl-C and files that change under a streamed fit, each in a child
process: a hang, a leak or a SIGBUS there fails the test instead of the run.

The child fits from a .npy path, an HDF5 dataset or a Zarr array with small
blocks and prints one line per event; the parent sends SIGINT once the fit
is under way and reads how the child came out of it.
"""
import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

CHILD = textwrap.dedent('''
    import json, os, signal, sys, threading, time
    import numpy as np
    import fastem

    signal.signal(signal.SIGINT, signal.default_int_handler)
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "h5":
        import h5py
        handle = h5py.File(path, "r"); X = handle["X"]
    elif kind == "zarr":
        import zarr
        X = zarr.open_array(path, mode="r")
    else:
        X = path
    if kind != "npy":
        X[:1]  # the library's own threads and handles, started by a first read

    def state():
        maps = open("/proc/self/maps").read()
        return {"fds": len(os.listdir("/proc/self/fd")),
                "mapped": sum(os.path.basename(path) in line for line in maps.splitlines()),
                "threads": threading.active_count(),
                "readers": sum(t.name.startswith("fastem-reader-")
                               for t in threading.enumerate())}

    def said(what, **more):
        print(json.dumps(dict(event=what, **more)), flush=True)

    before = state()
    gm = fastem.GaussianMixture(8, max_iter=100000, tol=0, random_state=0,
                                block_bytes=1 << 18, init_params="random_from_data",
                                callback=lambda i, lb, p: i == 2 and said("running"))
    try:
        gm.fit(X)
        said("finished")
    except KeyboardInterrupt:
        said("interrupted", at=time.monotonic(), before=before, after=state())
''')


def _write(kind, tmp_path):
    X = np.random.default_rng(0).normal(size=(60_000, 8))
    if kind == "npy":
        path = tmp_path / "X.npy"
        np.save(path, X)
    elif kind == "h5":
        h5py = pytest.importorskip("h5py")
        path = tmp_path / "X.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("X", data=X, chunks=(4096, 8))
    else:
        zarr = pytest.importorskip("zarr")
        path = tmp_path / "X.zarr"
        zarr.create_array(str(path), shape=X.shape, chunks=(4096, 8), dtype=X.dtype)[:] = X
    return str(path)


def _events(child, timeout):
    """The child's JSON lines until it exits (or timeout seconds)."""
    out, err = child.communicate(timeout=timeout)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], err


@pytest.mark.parametrize("kind", ["npy", "h5", "zarr"])
def test_ctrl_c_stops_a_streamed_fit_cleanly(kind, tmp_path):
    path = _write(kind, tmp_path)
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind, path], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = child.stdout.readline()  # the fit is two iterations in
        assert json.loads(line)["event"] == "running", line + child.stderr.read()
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        events, err = _events(child, timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    (event,) = events
    assert event["event"] == "interrupted", err
    # within about one block's time (a block is 256 KiB here)
    assert event["at"] - sent < 2.0
    # the reader thread has stopped, and the file is neither open nor mapped
    before, after = event["before"], event["after"]
    assert after["readers"] == before["readers"] == 0, event
    assert after["fds"] == before["fds"] and after["mapped"] == before["mapped"] == 0, event
    if kind == "npy":  # (HDF5 and Zarr libraries start threads of their own)
        assert after["threads"] == before["threads"], event


def _fit_while_changing(tmp_path, change):
    """Fit from a .npy path in a child that applies ``change`` (Python code
    on `path`) in the callback of the third iteration; (returncode, stderr)."""
    path = tmp_path / "X.npy"
    np.save(path, np.random.default_rng(0).normal(size=(60_000, 8)))
    code = textwrap.dedent(f'''
        import os, sys, numpy as np, fastem
        path = sys.argv[1]
        def change(i, lb, p):
            if i == 3:
                {change}
        fastem.GaussianMixture(4, max_iter=10, tol=0, random_state=0, block_bytes=1 << 18,
                               callback=change).fit(path)
    ''')
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120)
    return run.returncode, run.stderr, str(path)


@pytest.mark.parametrize("change, what", [
    ("os.truncate(path, os.path.getsize(path) // 2)", "was truncated from"),
    ("np.save(path, np.ones((60_000, 8)))", "was written to"),
    ("os.replace(path + '.new.npy', path) if np.save(path + '.new.npy', np.ones((9, 8))) "
     "is None else None", "was replaced by another file"),
    ("os.unlink(path)", "was deleted"),
])
def test_a_file_changed_under_a_fit_is_a_clear_error(tmp_path, change, what):
    returncode, stderr, path = _fit_while_changing(tmp_path, change)
    # an error naming the file, never a signal (SIGBUS: returncode -7)
    assert returncode == 1, stderr
    assert f"ValueError: fastem: {path} {what}" in stderr, stderr[-2000:]
