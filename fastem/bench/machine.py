"""What a timing depends on beyond the code: CPU, threads, BLAS, OpenMP,
versions and the environment, recorded with every result."""
import os
import platform
from contextlib import suppress
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

import fastem


def _cpuinfo():
    """(model name, "family F model M" or None, flags) of the first CPU."""
    fields, flags = {}, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or "unknown"
    # the model name alone ("AMD EPYC") does not tell CPU generations apart
    family = (f"family {fields['cpu family']} model {fields['model']}"
              if "cpu family" in fields and "model" in fields else None)
    return model, family, flags


def _package_version(*names):
    from importlib import metadata
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine_info() -> dict:
    """What a timing depends on beyond the code: CPU, threads, BLAS, OpenMP,
    versions and the environment variables that steer them."""
    import scipy
    import scipy.linalg
    import sklearn
    import sklearn.mixture

    model, family, flags = _cpuinfo()
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    cpu_max = None
    with suppress(OSError):
        cpu_max = Path("/sys/fs/cgroup/cpu.max").read_text().strip()
    env = {k: v for k, v in sorted(os.environ.items())
           if k.startswith(("OMP_", "OPENBLAS_", "MKL_", "GOTO", "KMP_", "BLIS_",
                            "TBB_", "FASTEM_"))}
    return {
        "cpu_model": model,
        "cpu_family_model": family,
        "cpu_flags": " ".join(flags),
        "simd": [f for f in flags if f.startswith(("sse4", "avx", "fma", "asimd", "sve"))],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "cgroup_cpu_max": cpu_max,
        "fastem_threads": fastem.effective_n_threads(),
        "fastem_openmp": fastem.openmp_enabled(),
        "fastem_kernels": fastem.show_config(mode="dicts")["kernels"]["variant"],
        "environment": env,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "threadpools": threadpool_info(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "fastem": fastem.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "scikit-learn-intelex": _package_version("scikit-learn-intelex"),
            "daal4py": _package_version("daal4py", "scikit-learn-intelex"),
        },
    }


def machine_differences(result: dict, baseline: dict) -> list[str]:
    """Machine facts that differ between a result and its baseline."""
    diffs = []
    a, b = result["machine"], baseline["machine"]
    for key in ("cpu_model", "cpu_family_model", "usable_cpus", "fastem_threads",
                "fastem_openmp", "openblas_coretype"):
        # older results do not record the CPU family: no difference then
        if key == "cpu_family_model" and not (a.get(key) and b.get(key)):
            continue
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: baseline {b.get(key)!r}, now {a.get(key)!r}")
    return diffs
