"""The register-blocked C kernels at every vector width they are written for.

The suite's other tests run the kernel variant chosen for this CPU
(tests/test_dispatch.py runs each built variant on a few fits); this
compiles a small C checker of the vector-extension kernels for AVX-512,
AVX2 and SSE2, with GCC and with Clang where they are installed, and runs
each build the CPU can run."""
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
KERNELS = HERE.parent / "src" / "fastem" / "_kernels"
WIDTHS = {
    "avx512": (["-mavx512f", "-mavx512dq", "-mfma"], "avx512f"),
    "avx2": (["-mavx2", "-mfma"], "avx2"),
    "sse2": (["-msse2"], None),
}


def _cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@pytest.mark.parametrize("compiler_name", ["gcc", "clang"])
@pytest.mark.parametrize("width", WIDTHS)
def test_kernels_match_plain_loops_at_each_vector_width(width, compiler_name, tmp_path):
    compiler = shutil.which(compiler_name)
    if compiler is None:
        pytest.skip(f"{compiler_name} is not installed")
    flags, needs = WIDTHS[width]
    if needs is not None and needs not in _cpu_flags():
        pytest.skip(f"this CPU cannot run {width} code")
    exe = tmp_path / "simd_widths"
    # the extension's optimisation flags (setup.py), so that the loops of the
    # checker are vectorised as the kernels' are
    build = subprocess.run(
        [compiler, "-O3", "-fno-math-errno", "-fno-trapping-math",
         "-fassociative-math", "-fno-signed-zeros", *flags, f"-I{KERNELS}",
         str(HERE / "simd_widths.c"),
         "-o", str(exe), "-lm"],
        capture_output=True, text=True)
    if build.returncode != 0 and "unrecognized" in build.stderr:
        pytest.skip(f"{compiler} does not target {width}: {build.stderr.strip()}")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    expected_bytes = {"avx512": 64, "avx2": 32, "sse2": 16}[width]
    assert f"vector bytes {expected_bytes}, failures 0" in run.stdout
