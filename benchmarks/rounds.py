"""Rounds: each corpus is measured in N rounds so that every method's samples spread over the same time window.

On a shared machine the speed drifts over minutes; when one method's worker runs while the machine is slow and
the baseline's ran while it was fast, the ratio between them moves by 10-25 % from run to run. So a corpus runs
round 1 of every method, then round 2 of every method, ..., with the method order rotated by one each round.
Each method keeps one worker process over the rounds (run.Workers), idle between its rounds: a file's later
rounds meet the process as one worker's later passes did (its caches warm, only round 1 has the file's first
sight), so a file's pooled samples have the make-up one round gave them and the tables keep their meaning.
`round_settings` splits the repeats, the minimum and the time budget across the rounds (split, not added);
`pool` joins a method's round outputs into one raw result of the worker's shape, so a file's median is taken over
all its samples, and keeps how many samples each round took (`round_samples`), so the report can also compute
each round's own ratio (`round_results`) and show how steady the pooled one is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

STARTUP_SAMPLES = 20
"""dcmqi's process start-up timings (`--version`) per corpus, split across the rounds like the repeats."""


def share(total: int, rounds: int, index: int) -> int:
    """Round `index`'s part of `total` (as even as possible, the remainder to the first rounds), at least 1."""
    return max(1, total // rounds + (index < total % rounds))


def round_settings(settings: dict, rounds: int) -> list[dict]:
    """Each round's sampling for a corpus's settings (repeat, min_samples, budget_seconds).

    The repeats add up to `repeat` (at least one per round); the minimum per file is divided (rounded up, so
    the pooled minimum is never below it) and so is the per-file time budget, so a large file stops after the
    same number of pooled samples as in one round."""
    return [
        {
            "repeat": share(settings["repeat"], rounds, index),
            "min_samples": max(1, -(-settings["min_samples"] // rounds)),
            "budget_seconds": settings["budget_seconds"] / rounds,
            "startup_samples": share(STARTUP_SAMPLES, rounds, index),
            # dcmqi's untimed GNU-time pass over every file gives the same peak each time: once per corpus.
            "child_peak": index == 0,
        }
        for index in range(rounds)
    ]


def rotation(methods: Sequence[str], index: int) -> list[str]:
    """The method order of round `index`: the list rotated by one per round."""
    shift = index % len(methods) if methods else 0
    return [*methods[shift:], *methods[:shift]]


def _max(outputs: list[dict], key: str) -> float | None:
    values = [o[key] for o in outputs if o.get(key) is not None]
    return max(values) if values else None


def pool(outputs: list[dict]) -> dict:
    """One method's round outputs (in round order) as one worker output: samples joined per file, peak and
    import RSS the maximum over the rounds (one process's high-water mark so far, so in practice the last
    round's), seconds summed, other load averaged; `rounds` keeps each round's."""
    results = []
    for per_round in zip(*(o["results"] for o in outputs), strict=True):
        failed = next((r for r in per_round if r["ok"] is False), None)
        last = failed or per_round[-1]  # a failure in any round makes the file a failure, with its reason
        results.append(
            {
                "samples": [s for r in per_round for s in r["samples"]],
                "cpu": [c for r in per_round for c in r["cpu"]],
                "round_samples": [len(r["samples"]) for r in per_round],
                "ok": last["ok"],
                "found": last["found"],
                "detail": last["detail"],
            }
        )
    startups = [o["startup"] for o in outputs if o.get("startup")]
    startup = None
    if startups:
        startup = {
            key: value if isinstance(value, str) else [x for s in startups for x in s.get(key, [])]
            for key, value in startups[0].items()
        }
    loads = [o["other_load_cores"] for o in outputs if o.get("other_load_cores") is not None]
    keys = ("seconds", "peak_rss_mb", "rss_imported_mb", "other_load_cores")
    return {
        "method": outputs[0]["method"],
        "results": results,
        "rss_start_mb": _max(outputs, "rss_start_mb"),
        "rss_imported_mb": _max(outputs, "rss_imported_mb"),
        "peak_rss_mb": _max(outputs, "peak_rss_mb"),
        "child_peak_rss_mb": _max(outputs, "child_peak_rss_mb"),
        "seconds": round(sum(o["seconds"] for o in outputs), 3),
        "startup": startup,
        "other_load_cores": round(statistics.fmean(loads), 2) if loads else None,
        "scanner": next((o["scanner"] for o in outputs if o.get("scanner")), None),
        "rounds": [{key: o.get(key) for key in keys} for o in outputs],
    }


def round_count(raw: dict) -> int:
    """How many rounds a pooled raw result holds (1 for a results.json written before rounds)."""
    return len(raw.get("rounds") or [None])


def round_results(raw: dict, index: int) -> dict:
    """A pooled raw result cut down to round `index`'s samples (a file not timed in that round is not ok in it).
    Round 1's first call of a file is its first sight, which the later rounds do not have: left out of round 1
    when the round has another sample, so that each round's median is of warm calls alike."""
    results = []
    for result in raw["results"]:
        counts = result.get("round_samples") or [len(result["samples"])]
        start, end = sum(counts[:index]), sum(counts[: index + 1])
        if index == 0 and end - start > 1:
            start += 1
        results.append(
            {
                **result,
                "samples": result["samples"][start:end],
                "cpu": result["cpu"][start:end],
                "round_samples": [end - start],
                "ok": result["ok"] and end > start,
            }
        )
    return {**raw, "results": results}


def measure(
    name: str,
    data: list[dict],
    methods: list[str],
    settings: dict,
    rounds: int,
    runner: Callable[[str, dict], dict],
    log: Callable[[str], None],
) -> dict:
    """Every method over one corpus in `rounds` rounds; `runner(method, round_settings)` runs one worker."""
    shares = round_settings(settings, rounds)
    outputs: dict[str, list[dict]] = {method: [] for method in methods}
    orders = []
    for index, settings_now in enumerate(shares):
        order = rotation(methods, index)
        orders.append(order)
        for method in order:
            started = time.monotonic()
            out = runner(method, settings_now)
            outputs[method].append(out)
            seconds, ok = time.monotonic() - started, sum(bool(r["ok"]) for r in out["results"])
            log(f"  {name}: round {index + 1}/{rounds} {method} done in {seconds:.0f} s ({ok}/{len(data)} ok)")
    return {
        "entries": data,
        "settings": settings,
        "rounds": rounds,
        "round_settings": shares,
        "orders": orders,
        "raw": {method: pool(outputs[method]) for method in methods},
    }
