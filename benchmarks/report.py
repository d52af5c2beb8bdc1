"""From raw worker and Spark measurements to summary numbers (`summarise`) and to RESULTS.md (`render`)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from .methods import BASELINE, CORE, LABELS
from .rounds import round_count, round_results

CORE_VS_BASELINE_TARGET = 20.0
MARGINAL_TARGET = 0.50
MARGINAL_MOONSHOT = 0.70
"""The job's files/s per further file against 2 × the core's single-process files/s (issue 4's decision, issue 21)."""
FIXED_TARGET_S = 8.0
"""A full run's fixed part: its time less the further files' marginal time."""
NOTHING_NEW_TARGET_S = 4.0
"""An incremental run that finds nothing new."""
MEMORY_FLAT_TOLERANCE = 1.25
"""Memory counts as flat when the peak at the largest run is at most this multiple of the smallest run's."""
LINEAR_R2 = 0.99
LINEAR_EXPONENT = (0.9, 1.1)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def per_file(raw: dict, entries: list[dict], startup: float = 0.0) -> list[dict]:
    rows = []
    for entry, result in zip(entries, raw["results"], strict=True):
        wall = _median(result["samples"])
        rows.append(
            {
                "label": entry["label"],
                "items": entry["items"],
                "ok": bool(result["ok"]),
                "detail": result["detail"],
                "found": result["found"],
                "samples": len(result["samples"]),
                "wall": wall,
                "cpu": _median(result["cpu"]),
                "first": result["samples"][0] if result["samples"] else math.nan,
                "wall_no_startup": max(wall - startup, 0.0),
            }
        )
    return rows


def _aggregate(rows: list[dict], key: str) -> dict:
    ok = [r for r in rows if r["ok"]]
    total = sum(r[key] for r in ok)
    items = sum(r["items"] for r in ok)
    return {
        "files": len(rows),
        "ok": len(ok),
        "median_ms": round(_median([r[key] for r in ok]) * 1e3, 3) if ok else None,
        "us_per_item": round(total / items * 1e6, 2) if items else None,
        "files_per_second": round(len(ok) / total, 2) if total else None,
        "total_seconds": round(total, 4),
    }


def _ratio(base_rows: list[dict], rows: list[dict], key: str, base_key: str | None = None) -> float | None:
    """Baseline time / method time over the files both read successfully (files/s ratio, same files)."""
    both = [(b, r) for b, r in zip(base_rows, rows, strict=True) if b["ok"] and r["ok"]]
    base = sum(b[base_key or key] for b, _ in both)
    own = sum(r[key] for _, r in both)
    return round(base / own, 2) if own else None


def _round_ratios(
    round_rows: dict[str, list[list[dict]]], method: str, key: str, indices: list[int] | None = None
) -> list[float | None]:
    """The method's ratio to the baseline within each round (each round's own per-file medians)."""
    base_rounds, own_rounds = round_rows[BASELINE], round_rows[method]
    pick = (lambda rows: rows) if indices is None else (lambda rows: [rows[i] for i in indices])
    return [_ratio(pick(b), pick(r), key) for b, r in zip(base_rounds, own_rounds, strict=True)]


def summarise_corpus(corpus: dict) -> dict:
    """Per method: aggregates by wall and CPU time, ratios to the baseline (pooled, and per round when there
    are rounds), RSS, failures."""
    entries = corpus["entries"]
    rows = {}
    round_rows: dict[str, list[list[dict]]] = {}
    for method, raw in corpus["raw"].items():
        startup = 0.0
        if raw.get("startup"):
            startup = _median(raw["startup"]["binary_version_seconds"])
        rows[method] = per_file(raw, entries, startup)
        if round_count(raw) > 1:
            round_rows[method] = [per_file(round_results(raw, i), entries) for i in range(round_count(raw))]
    base = rows.get(BASELINE)
    methods = {}
    for method, method_rows in rows.items():
        raw = corpus["raw"][method]
        summary = {
            "label": LABELS[method],
            "wall": _aggregate(method_rows, "wall"),
            "cpu": _aggregate(method_rows, "cpu"),
            "first_sight": _aggregate(method_rows, "first"),
            "peak_rss_mb": raw["peak_rss_mb"],
            "rss_imported_mb": raw["rss_imported_mb"],
            "child_peak_rss_mb": raw.get("child_peak_rss_mb"),
            "other_load_cores": raw.get("other_load_cores"),
            "failures": [{"file": r["label"], "detail": r["detail"]} for r in method_rows if not r["ok"]],
        }
        if base is not None:
            summary["ratio_vs_baseline"] = _ratio(base, method_rows, "wall")
            summary["ratio_vs_baseline_cpu"] = _ratio(base, method_rows, "cpu")
            if BASELINE in round_rows and method in round_rows:
                summary["ratio_vs_baseline_rounds"] = _round_ratios(round_rows, method, "wall")
                summary["ratio_vs_baseline_cpu_rounds"] = _round_ratios(round_rows, method, "cpu")
        if raw.get("startup"):
            summary["startup"] = {k: round(_median(v) * 1e3, 2) for k, v in raw["startup"].items() if k != "binary"}
            summary["wall_no_startup"] = _aggregate(method_rows, "wall_no_startup")
            if base is not None:
                summary["ratio_vs_baseline_no_startup"] = _ratio(base, method_rows, "wall_no_startup", "wall")
        methods[method] = summary
    return {"methods": methods, "rows": rows, "round_rows": round_rows}


def curve_points(corpus: dict, summary: dict) -> list[dict]:
    """Per generated size: each method's median ms per file over the seeds, and ratios to the baseline (pooled,
    and per round when there are rounds)."""
    rows, round_rows = summary["rows"], summary.get("round_rows", {})
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, entry in enumerate(corpus["entries"]):
        by_size[entry["items"]].append(index)
    points = []
    for items, indices in sorted(by_size.items()):
        methods: dict[str, dict] = {}
        point = {"items": items, "files": len(indices), "methods": methods}
        for method, method_rows in rows.items():
            subset = [method_rows[i] for i in indices]
            methods[method] = {
                "ok": sum(r["ok"] for r in subset),
                "median_ms": round(_median([r["wall"] for r in subset if r["ok"]]) * 1e3, 3)
                if any(r["ok"] for r in subset)
                else None,
                "us_per_item": _aggregate(subset, "wall")["us_per_item"],
            }
            if BASELINE in rows:
                base = [rows[BASELINE][i] for i in indices]
                methods[method]["ratio_vs_baseline"] = _ratio(base, subset, "wall")
                methods[method]["ratio_vs_baseline_cpu"] = _ratio(base, subset, "cpu")
                if BASELINE in round_rows and method in round_rows:
                    methods[method]["ratio_vs_baseline_rounds"] = _round_ratios(round_rows, method, "wall", indices)
        points.append(point)
    return points


def linear_fit(rows: list[dict], key: str = "wall") -> dict | None:
    """Least squares time = intercept + slope × items over the files, R², and the log-log exponent over files of
    100 items or more (1.0 for linear cost; R² on a linear scale is dominated by the largest files)."""
    points = [(r["items"], r[key]) for r in rows if r["ok"]]
    if len(points) < 3:
        return None
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    result = {
        "points": len(points),
        "slope_us_per_item": round(slope * 1e6, 3),
        "intercept_ms": round(intercept * 1e3, 3),
        "r2": round(1 - ss_res / ss_tot, 5) if ss_tot else None,
    }
    logs = [(math.log(x), math.log(y)) for x, y in points if x >= 100 and y > 0]
    if len({x for x, _ in logs}) >= 2:
        lx, ly = zip(*logs, strict=True)
        mlx, mly = statistics.fmean(lx), statistics.fmean(ly)
        exponent = sum((a - mlx) * (b - mly) for a, b in logs) / sum((a - mlx) ** 2 for a in lx)
        result["loglog_exponent_items_ge_100"] = round(exponent, 3)
    return result


def lake_core_rates(raw: dict, entries: list[dict], subsets: list[int]) -> dict:
    """The core's single-process files/s over the first N lake files (each file mapped once, first sight)."""
    rows = per_file(raw, entries)
    rates = {}
    for count in subsets:
        subset = rows[:count]
        total = sum(r["wall"] for r in subset)
        cpu = sum(r["cpu"] for r in subset)
        rates[str(count)] = {
            "files": len(subset),
            "ok": sum(r["ok"] for r in subset),
            "files_per_second": round(len(subset) / total, 2),
            "cpu_files_per_second": round(len(subset) / cpu, 2),
            "median_ms": round(_median([r["wall"] for r in subset]) * 1e3, 3),
            "items": sum(r["items"] for r in subset),
        }
    return {
        "rates": rates,
        "peak_rss_mb": raw["peak_rss_mb"],
        "other_load_cores": raw.get("other_load_cores"),
        "failures": [r["label"] for r in rows if not r["ok"]][:20],
        "scanner": raw.get("scanner"),
    }


def _mean_rates(runs: list[dict]) -> dict | None:
    """The core's lake rates averaged over its passes before and after the Spark runs."""
    if not runs:
        return None
    rates = {}
    for count in runs[0]["rates"]:
        values = [run["rates"][count] for run in runs]
        rates[count] = {
            **values[0],
            "files_per_second": round(statistics.fmean(v["files_per_second"] for v in values), 2),
            "cpu_files_per_second": round(statistics.fmean(v["cpu_files_per_second"] for v in values), 2),
        }
    return {**runs[0], "rates": rates, "passes": len(runs)}


def encoding_breakdown(raw: dict, entries: list[dict]) -> list[dict]:
    """The core's lake time per encoding (lake file i has `corpora.lake_encoding(i)`)."""
    from .corpora import lake_encoding

    rows = per_file(raw, entries)
    total = sum(r["wall"] for r in rows)
    groups: dict[str, list[dict]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(lake_encoding(index)[0], []).append(row)
    out = []
    for label, subset in groups.items():
        if not total:
            continue
        spent = sum(r["wall"] for r in subset)
        out.append(
            {
                "encoding": label,
                "files": len(subset),
                "us_per_item": round(spent / sum(r["items"] for r in subset) * 1e6, 2),
                "share_of_time": round(spent / total, 3),
            }
        )
    return out


def spark_comparison(spark_runs: list[dict], lake: dict | None) -> list[dict]:
    rows = []
    for run in spark_runs:
        row = {"files": run["requested_files"], "ok": run["ok"]}
        if run["ok"]:
            row["files_per_second"] = run["files_per_second"]
            core = (lake or {}).get("rates", {}).get(str(run["requested_files"]))
            if core:
                row["two_core_files_per_second"] = round(2 * core["files_per_second"], 2)
                row["fraction_of_two_cores"] = round(run["files_per_second"] / (2 * core["files_per_second"]), 3)
                row["map_step_fraction_of_two_cores"] = (
                    round(run["map_step_files_per_second"] / (2 * core["files_per_second"]), 3)
                    if run.get("map_step_files_per_second")
                    else None
                )
        rows.append(row)
    return rows


def marginal_cost(spark_runs: list[dict], lake_core: dict | None) -> dict | None:
    """What each further file costs the job, and its fixed part, from the smallest and the largest run: wall
    seconds, CPU per process role, and seconds per step of the run summary (steps that run side by side, the
    sinks, overlap: their parts add up to more than `sinks`). Against 2 × the core's files/s over the larger run's
    files."""
    runs = sorted((r for r in spark_runs if r["ok"]), key=lambda r: r["files"])
    if len(runs) < 2 or runs[-1]["files"] <= runs[0]["files"]:
        return None
    small, large = runs[0], runs[-1]
    extra = large["files"] - small["files"]
    seconds = (large["elapsed_seconds"] - small["elapsed_seconds"]) / extra
    if seconds <= 0:
        return None

    def per_file(before: dict, after: dict) -> dict[str, dict[str, float]]:
        return {
            name: {
                "ms_per_file": round((after.get(name, 0.0) - before.get(name, 0.0)) / extra * 1e3, 3),
                "fixed_seconds": round(
                    before.get(name, 0.0) - small["files"] * (after.get(name, 0.0) - before.get(name, 0.0)) / extra, 2
                ),
            }
            for name in dict.fromkeys([*before, *after])
        }

    out = {
        "from_files": small["files"],
        "to_files": large["files"],
        "ms_per_file": round(seconds * 1e3, 3),
        "files_per_second": round(1 / seconds, 2),
        "fixed_seconds": round(small["elapsed_seconds"] - small["files"] * seconds, 2),
        "steps": per_file(small["step_seconds"], large["step_seconds"]),
        "cpu": per_file(small.get("run_cpu_seconds", {}), large.get("run_cpu_seconds", {})),
    }
    core = (lake_core or {}).get("rates", {}).get(str(large["requested_files"]))
    if core:
        out["two_core_files_per_second"] = round(2 * core["files_per_second"], 2)
        out["fraction_of_two_cores"] = round(out["files_per_second"] / out["two_core_files_per_second"], 3)
        out["core_cpu_ms_per_file"] = round(1e3 / core["cpu_files_per_second"], 3)
    return out


def targets(results: dict) -> list[dict]:
    """The issue's targets, each with what was measured and whether it is met (reported, never asserted)."""
    out = []
    corpora = results.get("summary", {}).get("corpora", {})
    for name in ("real", "radiomics"):
        core = corpora.get(name, {}).get("methods", {}).get(CORE)
        if core and core.get("ratio_vs_baseline") is not None:
            out.append(
                {
                    "target": f"core ≥ {CORE_VS_BASELINE_TARGET:.0f}× baseline files/s, {name} corpus",
                    "measured": f"{core['ratio_vs_baseline']}× (CPU time: {core['ratio_vs_baseline_cpu']}×)"
                    + _per_round(core),
                    "met": core["ratio_vs_baseline"] >= CORE_VS_BASELINE_TARGET,
                }
            )
    for point in results.get("summary", {}).get("curve_points", []):
        core = point["methods"].get(CORE)
        if core and core.get("ratio_vs_baseline") is not None:
            out.append(
                {
                    "target": f"core ≥ {CORE_VS_BASELINE_TARGET:.0f}× baseline files/s, {point['items']} items",
                    "measured": f"{core['ratio_vs_baseline']}× (CPU time: {core['ratio_vs_baseline_cpu']}×)"
                    + _per_round(core),
                    "met": core["ratio_vs_baseline"] >= CORE_VS_BASELINE_TARGET,
                }
            )
    fit = results.get("summary", {}).get("linearity", {}).get(CORE)
    if fit:
        exponent = fit.get("loglog_exponent_items_ge_100")
        met = (fit["r2"] or 0) >= LINEAR_R2 and (
            exponent is None or LINEAR_EXPONENT[0] <= exponent <= LINEAR_EXPONENT[1]
        )
        out.append(
            {
                "target": f"core cost linear in content items (R² ≥ {LINEAR_R2}, log-log exponent in "
                f"{LINEAR_EXPONENT[0]}–{LINEAR_EXPONENT[1]})",
                "measured": f"{fit['slope_us_per_item']} µs/item + {fit['intercept_ms']} ms, R² {fit['r2']}, "
                f"exponent {exponent}",
                "met": met,
            }
        )
    marginal = results.get("summary", {}).get("spark_marginal")
    runs = [r for r in results.get("spark", []) if r["ok"]]
    if marginal:
        span = f"{marginal['from_files']:,} → {marginal['to_files']:,} files"
        if marginal.get("fraction_of_two_cores") is not None:
            out.append(
                {
                    "target": f"Spark local[2] marginal files/s ≥ {MARGINAL_TARGET:.0%} of 2 × core files/s "
                    f"(moonshot {MARGINAL_MOONSHOT:.0%}), {span}",
                    "measured": f"{marginal['fraction_of_two_cores']:.0%} ({marginal['files_per_second']} vs "
                    f"{marginal['two_core_files_per_second']} files/s; {marginal['ms_per_file']} ms per further file)",
                    "met": marginal["fraction_of_two_cores"] >= MARGINAL_TARGET,
                }
            )
            job_cpu = sum(step["ms_per_file"] for step in marginal["cpu"].values())
            if job_cpu > 0:
                efficiency = marginal["core_cpu_ms_per_file"] / job_cpu
                out.append(
                    {
                        "target": f"(CPU view of the marginal target, not its definition) core CPU per file ÷ the "
                        f"job's CPU per further file ≥ {MARGINAL_TARGET:.0%}, {span}",
                        "measured": f"{efficiency:.0%} ({marginal['core_cpu_ms_per_file']:.2f} vs {job_cpu:.2f} "
                        f"ms/file: "
                        + ", ".join(f"{role} {step['ms_per_file']:.2f}" for role, step in marginal["cpu"].items())
                        + ")",
                        "met": efficiency >= MARGINAL_TARGET,
                    }
                )
        out.append(
            {
                "target": f"Spark local[2] fixed part of a full run ≤ {FIXED_TARGET_S:g} s (run time less the marginal "
                f"time of its files, session start-up excluded), {span}",
                "measured": f"{marginal['fixed_seconds']} s",
                "met": marginal["fixed_seconds"] <= FIXED_TARGET_S,
            }
        )
    unchanged = next(
        (r for r in results.get("spark_incremental", []) if r.get("ok") and r["scenario"] == "nothing changed"), None
    )
    if unchanged:
        out.append(
            {
                "target": f"an incremental run that finds nothing new ≤ {NOTHING_NEW_TARGET_S:g} s (session start-up "
                f"excluded), {unchanged['files_found']:,} files",
                "measured": f"{unchanged['elapsed_seconds']} s",
                "met": unchanged["elapsed_seconds"] <= NOTHING_NEW_TARGET_S,
            }
        )
    if len(runs) >= 2:
        first, middle, last = runs[0]["memory"], runs[-2]["memory"], runs[-1]["memory"]
        span = f"{runs[0]['requested_files']:,} → {runs[-1]['requested_files']:,} files"
        workers = {k: last[k] / first[k] for k in ("python_worker_max_rss_mb", "python_workers_pss_mb") if first.get(k)}
        out.append(
            {
                "target": f"Python worker memory flat, {span} (peak grows ≤ {MEMORY_FLAT_TOLERANCE}×)",
                "measured": ", ".join(f"{k.removesuffix('_mb')} ×{v:.2f}" for k, v in workers.items()),
                "met": all(v <= MEMORY_FLAT_TOLERANCE for v in workers.values()),
            }
        )
        if first.get("jvm_rss_mb") and middle.get("jvm_rss_mb"):
            grows = last["jvm_rss_mb"] / first["jvm_rss_mb"]
            out.append(
                {
                    "target": f"JVM (the executor in local mode) memory flat, {span} (peak grows ≤ "
                    f"{MEMORY_FLAT_TOLERANCE}×)",
                    "measured": f"RSS {first['jvm_rss_mb']:,.0f} → {last['jvm_rss_mb']:,.0f} MB (×{grows:.2f}); "
                    f"×{last['jvm_rss_mb'] / middle['jvm_rss_mb']:.2f} over the last step "
                    f"({runs[-2]['requested_files']:,} → {runs[-1]['requested_files']:,})",
                    "met": grows <= MEMORY_FLAT_TOLERANCE,
                }
            )
    live = [m for m in results.get("spark_memory", []) if m["ok"] and (m.get("live_heap") or {}).get("peak_mb")]
    if len(live) >= 2:
        first, last = live[0], live[-1]
        grows = last["live_heap"]["peak_mb"] / first["live_heap"]["peak_mb"]
        out.append(
            {
                "target": f"(retained-memory view of the JVM target, not its definition) JVM live heap flat, "
                f"{first['requested_files']:,} → {last['requested_files']:,} files (peak heap left by a forced "
                f"full collection grows ≤ {MEMORY_FLAT_TOLERANCE}×)",
                "measured": f"{first['live_heap']['peak_mb']:,} → {last['live_heap']['peak_mb']:,} MB (×{grows:.2f})",
                "met": grows <= MEMORY_FLAT_TOLERANCE,
            }
        )
    return out


def spread(ratios: list[float | None] | None) -> str | None:
    """A per-round ratio list as 'min–max×' (None when there is no round or no ratio)."""
    values = [r for r in ratios or [] if r is not None]
    return f"{min(values):.2f}–{max(values):.2f}×" if values else None


def _per_round(method: dict) -> str:
    found = spread(method.get("ratio_vs_baseline_rounds"))
    return f"; per round {found}" if found else ""


def slim(results: dict) -> dict:
    """results.json without the lake's per-file data (2 × 10,000 timings): its summary is kept instead."""
    lake = results.get("lake")
    if not lake or lake.get("entries") is None:
        return results
    slimmed = {**lake, "entries": None}
    for key in ("raw", "raw_after"):
        if key in lake:
            slimmed[key] = {k: v for k, v in lake[key].items() if k != "results"}
    return {**results, "lake": slimmed}


def summarise(results: dict) -> dict:
    summary: dict = {"corpora": {}}
    for name, corpus in results["corpora"].items():
        if corpus.get("skipped"):
            continue
        corpus_summary = summarise_corpus(corpus)
        summary["corpora"][name] = {"methods": corpus_summary["methods"]}
        if name == "curve":
            summary["curve_points"] = curve_points(corpus, corpus_summary)
            summary["linearity"] = {method: linear_fit(rows) for method, rows in corpus_summary["rows"].items()}
            summary["linearity_cpu"] = {
                method: linear_fit(rows, "cpu") for method, rows in corpus_summary["rows"].items()
            }
        if name == "real":
            summary["real_files"] = [
                {
                    "file": entry["label"],
                    "items": entry["items"],
                    **{
                        m: (round(rows[i]["wall"] * 1e3, 3) if rows[i]["ok"] else None)
                        for m, rows in corpus_summary["rows"].items()
                    },
                }
                for i, entry in enumerate(corpus["entries"])
            ]
    lake = results.get("lake")
    previous = results.get("summary") or {}
    if lake and lake.get("entries") is None:  # a slimmed results.json: the lake's per-file data is not kept
        for key in ("lake_info", "lake_core_runs", "lake_core", "lake_encodings"):
            if key in previous:
                summary[key] = previous[key]
    elif lake and lake.get("raw"):
        items = [e["items"] for e in lake["entries"]]
        summary["lake_info"] = {
            "files": len(items),
            "kind": lake.get("kind", "typical"),
            "items": sum(items),
            "median_items": statistics.median(items),
            "root": lake["root"],
        }
        subsets = sorted({r["requested_files"] for r in results.get("spark", [])} | {len(lake["entries"])})
        subsets = [s for s in subsets if s <= len(lake["entries"])]
        summary["lake_core_runs"] = [
            {"when": when, **lake_core_rates(lake[key], lake["entries"], subsets)}
            for when, key in (("before Spark", "raw"), ("after Spark", "raw_after"))
            if lake.get(key)
        ]
        summary["lake_core"] = _mean_rates(summary["lake_core_runs"])
        summary["lake_encodings"] = encoding_breakdown(lake["raw"], lake["entries"])
    summary["spark"] = spark_comparison(results.get("spark", []), summary.get("lake_core"))
    summary["spark_marginal"] = marginal_cost(results.get("spark", []), summary.get("lake_core"))
    results["summary"] = summary
    summary["targets"] = targets(results)
    return summary


# --- RESULTS.md -------------------------------------------------------------------------------------------


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return [*lines, ""]


def _method_table(methods: dict) -> list[str]:
    per_round = any(s.get("ratio_vs_baseline_rounds") for s in methods.values())
    rows = []
    for method, s in methods.items():
        wall = s["wall"]
        rounds = ["" if method == BASELINE else spread(s.get("ratio_vs_baseline_rounds")) or "–"] if per_round else []
        rows.append(
            [
                s["label"],
                f"{wall['ok']}/{wall['files']}",
                wall["median_ms"],
                wall["us_per_item"],
                wall["files_per_second"],
                s["first_sight"]["files_per_second"],
                s["peak_rss_mb"] if not s.get("child_peak_rss_mb") else f"{s['child_peak_rss_mb']} (process)",
                "1 (baseline)" if method == BASELINE else _fmt(s.get("ratio_vs_baseline")) + "×",
                *rounds,
                "1 (baseline)" if method == BASELINE else _fmt(s.get("ratio_vs_baseline_cpu")) + "×",
            ]
        )
        if "wall_no_startup" in s:
            ns = s["wall_no_startup"]
            rows.append(
                [
                    f"dcmqi, start-up ({s['startup']['binary_version_seconds']} ms) subtracted"
                    + (
                        f" (console script start-up, not charged: {s['startup']['script_version_seconds']} ms)"
                        if "script_version_seconds" in s["startup"]
                        else ""
                    ),
                    f"{ns['ok']}/{ns['files']}",
                    ns["median_ms"],
                    ns["us_per_item"],
                    ns["files_per_second"],
                    "",
                    "",
                    _fmt(s.get("ratio_vs_baseline_no_startup")) + "×",
                    *([""] if per_round else []),
                    "",
                ]
            )
    return _table(
        [
            "method",
            "files ok",
            "median ms/file",
            "µs/item",
            "files/s per core",
            "files/s, first sight",
            "peak RSS MB",
            "vs baseline (wall)",
            *(["per round (wall, min–max)"] if per_round else []),
            "vs baseline (CPU)",
        ],
        rows,
    )


def _rounds_sentence(results: dict) -> str:
    rounds = max((c.get("rounds", 1) for c in results["corpora"].values() if c.get("raw")), default=1)
    if rounds == 1:
        return ""
    return (
        f"Each corpus runs in {rounds} rounds, round 1 of every method then round 2 and so on, the method order "
        "rotated by one each round, so that every method's samples spread over the same stretch of time (the "
        "machine's speed drifts); a method's process lasts over the rounds, idle between its own, so its later "
        "rounds are its later passes; a file's repeats, minimum and time budget are split across the rounds "
        "(at least one sample per round) and its samples pooled. 'Per round' columns give the min–max of the "
        "ratio computed within each round from that round's per-file medians (round 1 without the first-sight "
        "call when it has another). "
    )


def render(results: dict) -> str:
    meta, summary = results["meta"], results["summary"]
    machine, versions = meta["machine"], meta["versions"]
    lines = [
        "# sr2fhir benchmark results",
        "",
        f"Written by `benchmarks/run.py` on {meta['date']} ({'quick smoke run' if meta['quick'] else 'full run'}).",
        "",
        f"- command: `{meta['command']}`",
        f"- git: `{meta['git']}`",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']} GB RAM; load average at start "
        f"{machine['load_start']}, at end {machine.get('load_end')} (shared machine: absolute times drift, "
        "ratios within this run are what to compare)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- core reader scanner: {meta.get('scanner') or 'not exposed (no sr2fhir_core.reading.SCANNER)'}",
        f"- wall time of the whole run: {meta.get('seconds', 0) / 60:.1f} min",
        "",
        "## How it is measured",
        "",
        "Each method runs in a fresh Python process of its own per corpus (`benchmarks/worker.py`), so its peak "
        "RSS (VmHWM) is its own. "
        + _rounds_sentence(results)
        + "For dcmqi the peak RSS is that of its `tid1500reader` processes (GNU time's %M, in a "
        "separate untimed pass, once per corpus). A "
        "worker imports its libraries, maps a warm-up file that is in no measured set, then makes passes over the "
        "files, one timed call per file per pass, until a file has its repeats (fewer for large files, see "
        "`results.json`). Per file the median is taken; a corpus's files/s is files ÷ the sum of per-file medians "
        "(one process = one core), µs/item is that sum ÷ content items. Ratios are baseline time ÷ method time "
        "over the files both read successfully, in this run. CPU-time ratios (process + children CPU time) are "
        "shown beside the wall-clock ones: they are less disturbed by other work on a shared machine. File bytes "
        "are read before each timed call (not timed). 'First sight' uses each file's first timed call only: "
        "the core's fast reader keeps process-wide caches of coded strings and UIDs, so repeats of one file "
        "are kinder to it than a lake of distinct files; the lake numbers below are all first sight.",
        "",
        "- **baseline**: `pydicom.dcmread` of the bytes, then every element of every nested data set touched "
        "(what a plain pydicom job does to get at an SR's content tree).",
        "- **highdicom**: `highdicom.sr.srread` + planar/volumetric/image measurement groups, each measurement's "
        "name, value, unit, qualifier and each evaluation's name and value. Files where it raises or finds "
        "nothing are failures (listed below) and are left out of its numbers and ratios.",
        "- **dcmqi**: the native `tid1500reader` from the dcmqi wheel, one process per file writing JSON, then the "
        "JSON loaded. Its process start-up is measured on `--version` (median of 20) and shown; a second row "
        "subtracts it. The `tid1500reader` console script is a Python wrapper around the binary; its start-up "
        "is shown too and is not charged to dcmqi.",
        "- **sr2fhir core**: `map_sr(bytes)` (FHIR resources and table rows) + `dumps_json` of every resource, with "
        "the default reader and with `Reader.PYDICOM`. `core_reader` is the reader alone, to show the split.",
        "- **Spark**: `sr2fhir run` (conf/sr2fhir.yaml defaults, `local[2]`, Delta output) in its own process over "
        "2,500 / 5,000 / 10,000 generated files; files/s from its run summary (session start-up excluded, "
        "reported separately), against 2 × the core's single-process files/s over the same files mapped once "
        "each (first sight, in a worker as above). Memory: psutil samples the process tree every 0.25 s. A "
        "warm-up run first has the JVM write its class archive (`spark.class_archive_dir`, "
        "jobs/spark/class_archive.py), which every measured run then maps, as a user's second and later local runs do.",
        "",
    ]
    lines += ["## Targets (reported, not asserted)", ""]
    lines += _table(
        ["target", "measured", "met"],
        [[t["target"], t["measured"], "yes" if t["met"] else "**no**"] for t in summary.get("targets", [])],
    )
    corpora = results["corpora"]
    titles = {
        "real": "Real TID 1500 files (shared corpus, without the radiomics file)",
        "radiomics": "The 4,602-item radiomics file",
        "curve": "Generated size curve (all sizes together)",
    }
    for name, title in titles.items():
        corpus = corpora.get(name)
        if corpus is None:
            continue
        lines += [f"## {title}", ""]
        if corpus.get("skipped"):
            lines += [f"Skipped: {corpus['skipped']}", ""]
            continue
        items = [e["items"] for e in corpus["entries"]]
        lines += [f"{len(items)} files, {sum(items):,} content items ({min(items)}–{max(items)} per file).", ""]
        lines += _method_table(summary["corpora"][name]["methods"])
        loads = [f"{m} {_fmt(v.get('other_load_cores'))}" for m, v in summary["corpora"][name]["methods"].items()]
        lines += [
            "Other load on the machine while each method ran (cores busy with work outside this benchmark): "
            + ", ".join(loads)
            + ".",
            "",
        ]
        if name == "real" and summary.get("real_files"):
            methods = list(summary["corpora"][name]["methods"])
            lines += ["Per file, median ms (– = the method failed on it):", ""]
            rows = []
            for f in summary["real_files"]:
                ratio = f[BASELINE] / f[CORE] if f.get(BASELINE) and f.get(CORE) else None
                rows.append([f["file"], f["items"], *[f.get(m) for m in methods], ratio])
            lines += _table(["file", "items", *methods, "baseline / core"], rows)
        if name == "curve":
            lines += _curve_section(summary)
    lines += _lake_section(results, summary)
    lines += _failures_section(summary)
    lines += ["## Notes", ""] + [f"- {note}" for note in results.get("notes", [])] + [""]
    return "\n".join(lines)


def _curve_section(summary: dict) -> list[str]:
    points = summary.get("curve_points", [])
    if not points:
        return []
    methods = list(points[0]["methods"])
    per_round = any(p["methods"].get(CORE, {}).get("ratio_vs_baseline_rounds") for p in points)
    lines = ["Per size (median ms per file over the seeds; ratio = baseline ÷ method on the same files):", ""]
    rows = []
    for p in points:
        row = [p["items"], p["files"]]
        for m in methods:
            pm = p["methods"][m]
            row.append(pm["median_ms"] if pm["ok"] == p["files"] else f"{_fmt(pm['median_ms'])} ({pm['ok']} ok)")
        core = p["methods"].get(CORE, {})
        row += [core.get("us_per_item"), core.get("ratio_vs_baseline")]
        row += [spread(core.get("ratio_vs_baseline_rounds")) or "–"] if per_round else []
        row += [core.get("ratio_vs_baseline_cpu")]
        rows.append(row)
    lines += _table(
        [
            "items",
            "files",
            *methods,
            f"{CORE} µs/item",
            f"{CORE} vs baseline",
            *(["per round (min–max)"] if per_round else []),
            "(CPU)",
        ],
        rows,
    )
    lines += ["Cost against size: least squares time = intercept + slope × items over every curve file:", ""]
    rows = []
    for method, fit in summary.get("linearity", {}).items():
        if fit:
            cpu = summary.get("linearity_cpu", {}).get(method) or {}
            rows.append(
                [
                    method,
                    fit["points"],
                    fit["slope_us_per_item"],
                    fit["intercept_ms"],
                    fit["r2"],
                    fit.get("loglog_exponent_items_ge_100"),
                    cpu.get("slope_us_per_item"),
                    cpu.get("r2"),
                ]
            )
    lines += _table(
        [
            "method",
            "files",
            "slope µs/item",
            "intercept ms",
            "R²",
            "log-log exponent (≥100 items)",
            "CPU slope µs/item",
            "CPU R²",
        ],
        rows,
    )
    return lines


INCREMENTAL_STEPS = ("list", "remove", "map", "statistics", "sinks", "ledger")


def _incremental_table(runs: list[dict]) -> list[str]:
    """The incremental pass (benchmarks.spark.incremental_runs): scheduled runs after the first."""
    done = [r for r in runs if r["ok"]]
    if not done:
        return []
    lines = [
        f"Incremental runs over a copy of the lake's first files: {done[0]['files_found']:,} of them (1 % held "
        "back) mapped once, then `sr2fhir run` again into the same output with nothing changed, then after the "
        "held-back 1 % arrived (new files only: the tables get an append), then after 1 % of the files got a new "
        "modification time and another 1 % were deleted (a MERGE; their rows leave the tables); session start-up "
        "excluded:",
        "",
    ]
    lines += _table(
        ["run", "files found", "files mapped", "files removed", "run s", *(f"{s} s" for s in INCREMENTAL_STEPS)],
        [
            [
                r["scenario"],
                r["files_found"],
                r["files"],
                (r.get("removed") or {}).get("files", 0),
                r["elapsed_seconds"],
                *(r["step_seconds"].get(s, "–") for s in INCREMENTAL_STEPS),
            ]
            for r in done
        ],
    )
    return lines


def _lake_section(results: dict, summary: dict) -> list[str]:
    lake = results.get("lake")
    lines = ["## Spark job over generated files", ""]
    if not lake or lake.get("skipped"):
        return [*lines, f"Skipped: {(lake or {}).get('skipped', 'not run')}", ""]
    info = summary.get("lake_info")
    if info:
        lines += [
            f"{info['files']:,} generated {info.get('kind', 'typical')} reports ({info['items']:,} content items, "
            f"median {info['median_items']:.0f} per file; a realistic mix of encodings, no big endian; 4 SRs per "
            f"study), cached in `{info['root']}`.",
            "",
        ]
    core_runs = summary.get("lake_core_runs") or []
    if core_runs:
        lines += [
            "The core alone, one process, each file mapped once (first sight), before and after the Spark runs; "
            "the Spark comparison uses their mean:",
            "",
        ]
        lines += _table(
            ["pass", "files", "ok", "median ms/file", "files/s (wall)", "files/s (CPU)", "other load (cores)"],
            [
                [
                    run["when"],
                    int(k),
                    v["ok"],
                    v["median_ms"],
                    v["files_per_second"],
                    v["cpu_files_per_second"],
                    run.get("other_load_cores"),
                ]
                for run in core_runs
                for k, v in run["rates"].items()
            ],
        )
    if summary.get("lake_encodings"):
        lines += ["The core's lake time by encoding (first pass):", ""]
        lines += _table(
            ["encoding", "files", "µs/item", "share of the core's time"],
            [
                [e["encoding"], e["files"], e["us_per_item"], f"{e['share_of_time']:.0%}"]
                for e in summary["lake_encodings"]
            ],
        )
    runs = results.get("spark", [])
    if runs:
        comparison = {c["files"]: c for c in summary.get("spark", [])}
        rows = []
        for run in runs:
            c = comparison.get(run["requested_files"], {})
            if not run["ok"]:
                rows.append([run["requested_files"], "failed", "", "", "", "", "", ""])
                continue
            rows.append(
                [
                    run["requested_files"],
                    run["session_startup_seconds"],
                    run["elapsed_seconds"],
                    run["files_per_second"],
                    c.get("two_core_files_per_second"),
                    f"{c['fraction_of_two_cores']:.0%}" if c.get("fraction_of_two_cores") is not None else "–",
                    run["map_step_files_per_second"],
                    f"{c['map_step_fraction_of_two_cores']:.0%}" if c.get("map_step_fraction_of_two_cores") else "–",
                ]
            )
        lines += ["`sr2fhir run` on local[2]:", ""]
        lines += _table(
            [
                "files",
                "session start-up s",
                "run s (excl. start-up)",
                "files/s",
                "2 × core files/s",
                "Spark / (2 × core)",
                "map step files/s",
                "map step / (2 × core)",
            ],
            rows,
        )
        lines += [
            "CPU during the run (session start-up and shutdown excluded), from psutil; 'other load' is CPU that "
            "work outside this benchmark used on the machine meanwhile (/proc/stat):",
            "",
        ]
        lines += _table(
            [
                "files",
                "JVM CPU s",
                "Python workers CPU s",
                "driver CPU s",
                "CPU ms/file",
                "cores used",
                "other load (cores)",
                "core alone CPU ms/file",
            ],
            [
                [
                    r["requested_files"],
                    r["run_cpu_seconds"].get("jvm"),
                    r["run_cpu_seconds"].get("python_workers"),
                    r["run_cpu_seconds"].get("driver"),
                    r["run_cpu_ms_per_file"],
                    r["run_cores_used"],
                    r["other_load_cores"],
                    _core_cpu_ms(summary, r["requested_files"]),
                ]
                for r in runs
                if r["ok"]
            ],
        )
        lines += [
            "Memory, peak over the whole run (MB). JVM RSS counts heap the JVM has taken from the system, which "
            "it may grow up to spark.driver.memory and rarely gives back; 'heap used' is Spark's own executor "
            "metric polled with each task's end, garbage not yet collected included:",
            "",
        ]
        lines += _table(
            [
                "files",
                "JVM RSS",
                "JVM heap used (Spark)",
                "JVM off-heap used (Spark)",
                "Python workers RSS (sum)",
                "largest Python worker RSS",
                "Python workers PSS (sum)",
                "driver RSS",
                "worker processes (seen / at once)",
            ],
            [
                [
                    r["requested_files"],
                    r["memory"]["jvm_rss_mb"],
                    r["event_log"].get("peak_mb", {}).get("jvm_heap_used"),
                    r["event_log"].get("peak_mb", {}).get("jvm_off_heap_used"),
                    r["memory"]["python_workers_rss_mb"],
                    r["memory"]["python_worker_max_rss_mb"],
                    r["memory"]["python_workers_pss_mb"],
                    r["memory"]["driver_rss_mb"],
                    f"{r['memory']['python_worker_processes_seen']} / {r['memory']['python_worker_processes_at_once']}",
                ]
                for r in runs
                if r["ok"]
            ],
        )
        steps = sorted(
            {s for r in runs if r["ok"] for s in r["step_seconds"]},
            key=lambda s: (
                list(runs[-1].get("step_seconds", {})).index(s) if s in runs[-1].get("step_seconds", {}) else 99
            ),
        )
        lines += ["Seconds per job step (from the run summary):", ""]
        lines += _table(
            ["files", *steps, "tasks", "stages"],
            [
                [
                    r["requested_files"],
                    *[r["step_seconds"].get(s) for s in steps],
                    r["event_log"].get("task_count"),
                    r["event_log"].get("stage_count"),
                ]
                for r in runs
                if r["ok"]
            ],
        )
        lines += _marginal_table(summary.get("spark_marginal"))
        live = [m for m in results.get("spark_memory", []) if m["ok"] and m.get("live_heap")]
        if live:
            lines += [
                f"JVM heap the run holds, as opposed to heap taken (a second pass, `sr2fhir run` again with a full "
                f"collection forced every {live[0]['live_heap']['every_seconds']:g} s by `jcmd GC.run`; the JVM's GC "
                "log gives the heap each left, MB, in run order; the forced pauses slow these runs, so their "
                "times are not the throughput runs'):",
                "",
            ]
            lines += _table(
                ["files", "collections", "peak live heap", "live heap after each collection", "JVM RSS", "run s"],
                [
                    [
                        m["requested_files"],
                        m["live_heap"]["forced_collections"],
                        m["live_heap"]["peak_mb"],
                        " ".join(str(x) for x in m["live_heap"]["after_mb"]),
                        m["jvm_rss_mb"],
                        m["elapsed_seconds"],
                    ]
                    for m in live
                ],
            )
        lines += _incremental_table(results.get("spark_incremental", []))
        largest = max((r for r in runs if r["ok"]), key=lambda r: r["requested_files"], default=None)
        if largest and largest["event_log"].get("stages"):
            stages = sorted(largest["event_log"]["stages"], key=lambda s: -s["seconds"])[:12]
            lines += [f"Longest Spark stages of the {largest['requested_files']:,}-file run (event log):", ""]
            lines += _table(
                ["stage", "name", "SQL", "tasks", "wall s", "task run s (sum)", "deserialise s", "GC s"],
                [
                    [
                        s["stage"],
                        s["name"][:60],
                        (s["sql"] or "")[:50],
                        s["tasks"],
                        s["seconds"],
                        s["task_seconds"],
                        s["deserialize_seconds"],
                        s["gc_seconds"],
                    ]
                    for s in stages
                ],
            )
    profile = results.get("spark_profile")
    if profile:
        files = profile["files"]
        lines += [
            f"Map step profile (`benchmarks/spark_profile.py`, one session, {files:,} files, round 2 of "
            f"{len(next(iter(profile['variants'].values())))}): read = listing + reading the bytes; python-min = the "
            "Python worker round trip with a trivial function; map-noop = the job's Mapper, output discarded; "
            "map-parquet = the job's map step (Mapper → Parquet staging):",
            "",
        ]
        rows = []
        for name, rounds in profile["variants"].items():
            last = rounds[-1]
            cpu = last["cpu"]
            total = sum(cpu.values())
            rows.append(
                [
                    name,
                    last["wall"],
                    round(files / last["wall"], 1),
                    cpu.get("jvm"),
                    cpu.get("python_workers"),
                    round(total / files * 1e3, 2),
                    round(total / last["wall"], 2),
                ]
            )
        lines += _table(
            ["variant", "wall s", "files/s", "JVM CPU s", "Python workers CPU s", "CPU ms/file", "cores used"], rows
        )
    for finding in results.get("spark_findings", []):
        lines.append(f"- {finding}")
    return [*lines, ""]


def _marginal_table(marginal: dict | None) -> list[str]:
    """What a further file costs per step and per process, and the fixed part of each (issue 21's breakdown)."""
    if not marginal:
        return []
    lines = [
        f"Cost per further file, between the {marginal['from_files']:,}- and the {marginal['to_files']:,}-file runs "
        f"(the run: {marginal['ms_per_file']} ms per further file, {marginal['files_per_second']} files/s, fixed part "
        f"{marginal['fixed_seconds']} s). Per step of the run summary (the sinks run side by side, so their parts "
        "add up to more than `sinks`) and per process (CPU):",
        "",
    ]
    rows = [[f"step: {name}", v["ms_per_file"], v["fixed_seconds"]] for name, v in marginal["steps"].items()]
    rows += [[f"CPU: {role}", v["ms_per_file"], v["fixed_seconds"]] for role, v in marginal["cpu"].items()]
    if marginal.get("core_cpu_ms_per_file") is not None:
        rows.append(["CPU: the core alone, one process (for comparison)", marginal["core_cpu_ms_per_file"], ""])
    return [*lines, *_table(["part", "ms per further file", "fixed s"], rows)]


def _core_cpu_ms(summary: dict, files: int) -> float | None:
    rate = ((summary.get("lake_core") or {}).get("rates") or {}).get(str(files))
    return round(1e3 / rate["cpu_files_per_second"], 2) if rate else None


def _failures_section(summary: dict) -> list[str]:
    lines = ["## Files a method failed on", ""]
    rows = []
    for corpus, data in summary["corpora"].items():
        for method, s in data["methods"].items():
            for failure in s["failures"]:
                rows.append(
                    [
                        corpus,
                        method,
                        failure["file"],
                        " ".join((failure["detail"] or "").split())[:110].replace("|", "/"),
                    ]
                )
    if not rows:
        return [*lines, "None.", ""]
    return lines + _table(["corpus", "method", "file", "why"], rows)
