"""The text tables of ``fastem bench``: a result, and its comparison with a
baseline."""
import math

from fastem.bench.libraries import peers
from fastem.bench.roofline import roofline_rates


def _seconds(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    if x <= 0:
        return f"{x:.2g}"
    decimals = min(7, max(0, 2 - math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def _times(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}x"


def _table(header, rows, align):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = []
    for cells in [header, *rows]:
        lines.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _workload_table(result):
    header = ["workload", "kind", "N x D, K, cov", "fastem s/it", "sklearn s/it", "speed-up"]
    align = ["<", "<", "<", ">", ">", ">"]
    for peer in peers():
        header += [f"{peer} s/it", f"vs {peer}"]
        align += [">", ">"]
    header += ["GFLOP/s", "x ideal", "limit", "noise", "agrees"]
    align += [">", ">", "<", ">", "<"]

    rows = []
    for name, e in result["workloads"].items():
        w = e["workload"]
        libs = e["libraries"]
        agree = e["agreement"]
        ok = "yes" if agree["fastem_ok"] else "NO"
        row = [
            name, e["title"],
            f"{w['n_samples']:,} x {w['n_features']}, {w['n_components']}, "
            f"{w['covariance_type']}",
            _seconds(libs["fastem"]["s_per_iter"]),
            _seconds(libs["sklearn"]["s_per_iter"]),
            _times(e["speedup_vs_sklearn"]),
        ]
        for peer in peers():
            theirs = libs.get(peer)
            row += [_seconds(theirs["s_per_iter"]) if theirs else "n/a",
                    _times(e.get(f"speedup_vs_{peer}")) if theirs else "n/a"]
            if theirs is not None and not agree.get(f"{peer}_ok", True):
                ok += f" ({peer} no)"
        row += [
            f"{e['ideal']['flops'] / libs['fastem']['s_per_iter'] / 1e9:.0f}"
            if "ideal" in e and libs["fastem"]["s_per_iter"] > 0 else "n/a",
            f"{e['multiple_of_ideal']:.3g}" if "multiple_of_ideal" in e else "n/a",
            e["ideal"]["limit"] if "ideal" in e else "n/a",
            f"{100 * e['speedup_noise']:.0f}%",
            ok,
        ]
        rows.append(row)
    lines = [_table(header, rows, align)]
    legend = ["speed-up = sklearn s/it / fastem s/it (median of per-round ratios)"]
    legend += [f"vs {peer} = {peer} s/it / fastem s/it" for peer in peers()]
    lines.append("; ".join(legend) + ";")
    lines.append("GFLOP/s = the ideal flops of an iteration / fastem s/it; x ideal = "
                 "fastem s/it / this machine's ideal s/it; noise = interquartile range / "
                 "median of the per-round speed-ups.")
    for peer in peers():
        notes = sorted({e[f"{peer}_note"] for e in result["workloads"].values()
                        if e.get(f"{peer}_note")})
        lines.extend(f"{peer} n/a: {note}" for note in notes)
    return lines


def format_result(result: dict) -> str:
    """The text report of a result: workloads, roofline, memory, scoring."""
    lines = []
    mode = "quick (N / 100)" if result.get("quick") else "full"
    machine = result["machine"]
    counts = sorted({e["workload"].get("max_iter", result["iterations"])
                     for e in result["workloads"].values()}, reverse=True)
    iterations = " or ".join(str(c) for c in counts) or str(result["iterations"])
    lines.append(f"fastem bench, {mode}, {iterations} EM iterations from a fixed "
                 f"init, marginal seconds per iteration, median of {result['rounds']} rounds")
    family = machine.get("cpu_family_model")
    # results saved before the kernels had variants do not name one
    kernels = machine.get("fastem_kernels")
    lines.append(f"{machine['cpu_model']}{f' ({family})' if family else ''}, "
                 f"{machine['usable_cpus']} usable CPUs, fastem "
                 f"{machine['fastem_threads']} threads (OpenMP "
                 f"{'on' if machine['fastem_openmp'] else 'off'}"
                 f"{', kernels ' + kernels if kernels else ''})")
    lines.append("")
    lines.extend(_workload_table(result))

    roof = result["roofline"]
    t = roof["threads"]
    rates = roofline_rates(roof, t)
    lines.append("")
    lines.append(f"Roofline ({t} threads; per core x threads for compute, best of "
                 f"1..{t} reading threads for memory)")
    lines.append(f"  dgemm {roof['dgemm_gflops_per_core']:.1f} GFLOP/s per core, "
                 f"ceiling {rates['dgemm'] / 1e9:.1f} (measured "
                 f"{roof['dgemm_gflops_measured'].get(str(t), float('nan')):.1f} "
                 f"on {t} threads)")
    lines.append(f"  sgemm {roof['sgemm_gflops_per_core']:.1f} GFLOP/s per core, "
                 f"ceiling {rates['sgemm'] / 1e9:.1f} (measured "
                 f"{roof['sgemm_gflops_measured'].get(str(t), float('nan')):.1f} "
                 f"on {t} threads)")
    reads = ", ".join(f"{g:.1f} ({k} thr)" for k, g in roof["read_gbs_measured"].items())
    lines.append(f"  memory read {reads} GB/s")
    lines.append(f"  exp {roof['exp_per_s_per_core'] / 1e9:.2f}e9 /s per core, "
                 f"ceiling {rates['exp'] / 1e9:.2f}e9 /s")

    if result.get("derived"):
        lines.append("")
        lines.append("Scaling (fastem)")
        for label, value in result["derived"].items():
            lines.append(f"  {label}: {_times(value)}")

    memory = result.get("memory")
    if memory:
        lines.append("")
        lines.append(f"Peak memory of a fit on {memory['workload']} (fresh process, "
                     f"beyond the data's {memory['data_bytes'] / 2**20:.1f} MiB; model "
                     f"{memory['model_bytes'] / 2**10:.1f} KiB)")
        for lib, m in memory["libraries"].items():
            if "error" in m:
                lines.append(f"  {lib:8} failed: {' '.join(m['error'])}")
            else:
                lines.append(f"  {lib:8} +{m['extra_bytes'] / 2**20:8.1f} MiB  "
                             f"({m['extra_over_data']:.2f} x data)")

    scoring = result.get("scoring")
    if scoring:
        lines.append("")
        lines.append(f"Scoring on {scoring['workload']} ({scoring['n_samples']:,} rows), "
                     "seconds per call")
        for method in ("predict_proba", "score_samples"):
            s = scoring[method]
            lines.append(f"  {method:14} fastem {_seconds(s['fastem_s'])}  sklearn "
                         f"{_seconds(s['sklearn_s'])}  speed-up {_times(s['speedup'])}")
    return "\n".join(lines)


def format_comparison(rows: list[dict], baseline_path, baseline: dict) -> str:
    """The comparison table of :func:`fastem.bench.compare`'s rows."""
    lines = [f"Compared with {baseline_path} ({baseline.get('created', '?')}, "
             f"{baseline['machine'].get('cpu_model', '?')})"]
    header = ["workload", "baseline speed-up", "now", "change", "allowed fall", "status"]
    table = []
    for r in rows:
        if r["status"] == "not run":
            continue
        table.append([
            r["workload"],
            _times(r["baseline"]) if r["baseline"] is not None else "-",
            _times(r["current"]),
            f"{100 * r['change']:+.1f}%" if r["change"] is not None else "-",
            f"{100 * r['threshold']:.1f}%" if r["threshold"] is not None else "-",
            r["status"],
        ])
    lines.append(_table(header, table, ["<", ">", ">", ">", ">", "<"]))
    for r in rows:
        if "first_change" in r:
            lines.append(f"{r['workload']}: run again after a first attempt at "
                         f"{100 * r['first_change']:+.1f}%; a regression is two "
                         f"falls beyond the threshold")
    skipped = [r["workload"] for r in rows if r["status"] == "not run"]
    if skipped:
        lines.append(f"in the baseline, not run now: {', '.join(skipped)}")
    return "\n".join(lines)

