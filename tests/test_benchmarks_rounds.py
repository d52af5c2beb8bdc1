"""The benchmark's rounds (benchmarks/rounds.py): each corpus runs round 1 of every method, then round 2, ...,
the order rotated each round, the samples split across the rounds and pooled per file. A fake runner stands in
for the worker processes, and the worker itself runs a fake method: nothing here is timed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from benchmarks import worker
from benchmarks.methods import BASELINE, CORE, Outcome, Run
from benchmarks.report import curve_points, render, summarise, summarise_corpus
from benchmarks.rounds import STARTUP_SAMPLES, measure, pool, rotation, round_results, round_settings
from benchmarks.run import FULL, QUICK

ENTRIES = [{"path": f"/nowhere/{i}.dcm", "items": items, "label": f"f{i}"} for i, items in enumerate((10, 10, 100))]


def _output(method: str, samples: list[list[float]], peak: float, ok: tuple[bool, ...] = (True, True, True)) -> dict:
    """A worker's output: per file its samples (wall = CPU), and the process's RSS."""
    return {
        "method": method,
        "results": [
            {"samples": s, "cpu": s, "ok": good, "found": 1 if good else None, "detail": None if good else "bad"}
            for s, good in zip(samples, ok, strict=True)
        ],
        "rss_start_mb": 10.0,
        "rss_imported_mb": peak - 5,
        "peak_rss_mb": peak,
        "child_peak_rss_mb": None,
        "seconds": 1.5,
        "startup": None,
        "other_load_cores": peak / 100,
        "scanner": "c" if method == CORE else None,
    }


def test_round_settings_split_the_samples_and_the_budget() -> None:
    real = round_settings(FULL["real"], 3)
    assert [r["repeat"] for r in real] == [3, 2, 2]  # adds up to the one-round repeat, not 3 x it
    assert [r["min_samples"] for r in real] == [1, 1, 1]
    assert [r["budget_seconds"] for r in real] == [1.0, 1.0, 1.0]
    assert sum(r["startup_samples"] for r in real) == STARTUP_SAMPLES
    assert [r["child_peak"] for r in real] == [True, False, False]  # dcmqi's untimed RSS pass once per corpus
    radiomics = round_settings(FULL["radiomics"], 3)  # repeat 5, min 2: the pooled minimum is not below 2
    assert [r["repeat"] for r in radiomics] == [2, 2, 1]
    assert sum(r["min_samples"] for r in radiomics) >= FULL["radiomics"]["min_samples"]
    # More rounds than repeats: every round still takes a sample.
    assert [r["repeat"] for r in round_settings(QUICK, 3)] == [1, 1, 1]
    (one,) = round_settings(FULL["curve"], 1)
    assert (one["repeat"], one["min_samples"], one["budget_seconds"]) == (5, 2, 4.0)


def test_rotation_puts_each_method_first_once_over_as_many_rounds() -> None:
    methods = ["a", "b", "c"]
    orders = [rotation(methods, i) for i in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert {order[0] for order in orders[:3]} == set(methods)


def _fake_runs(rounds: int) -> tuple[dict, list[tuple[str, dict]]]:
    """measure() over ENTRIES with a runner whose samples say which round and method they come from."""
    calls: list[tuple[str, dict]] = []
    base_ms = {1: 10.0, 2: 20.0, 3: 12.0}  # the baseline's speed drifts between rounds; the core's does not

    def runner(method: str, settings: dict) -> dict:
        calls.append((method, settings))
        index = sum(m == method for m, _ in calls)  # this method's round, 1-based
        ms = base_ms[index] if method == BASELINE else 1.0
        samples = [[ms / 1e3 * (1 + 0.01 * k) for k in range(settings["repeat"])] for _ in ENTRIES]
        ok = (True, index != 2, True) if method == "highdicom" else (True, True, True)
        return _output(method, samples, peak=100.0 + 10 * index * (method == CORE), ok=ok)

    corpus = measure("fake", ENTRIES, [BASELINE, "highdicom", CORE], FULL["real"], rounds, runner, lambda _: None)
    return corpus, calls


def test_measure_runs_each_round_of_every_method_in_rotated_order() -> None:
    corpus, calls = _fake_runs(3)
    assert [method for method, _ in calls] == [
        *(BASELINE, "highdicom", CORE),
        *("highdicom", CORE, BASELINE),
        *(CORE, BASELINE, "highdicom"),
    ]
    assert corpus["orders"][1] == ["highdicom", CORE, BASELINE]
    assert [s["repeat"] for m, s in calls if m == CORE] == [3, 2, 2]
    assert list(corpus["raw"]) == [BASELINE, "highdicom", CORE]  # the tables keep the baseline first


def test_pooling_joins_samples_in_round_order_and_takes_the_maximum_rss() -> None:
    corpus, _ = _fake_runs(3)
    core = corpus["raw"][CORE]
    first = core["results"][0]
    assert first["round_samples"] == [3, 2, 2]
    assert len(first["samples"]) == len(first["cpu"]) == FULL["real"]["repeat"]
    base = corpus["raw"][BASELINE]["results"][0]["samples"]
    assert base[:3] == pytest.approx([0.010, 0.0101, 0.0102]) and base[3:5] == pytest.approx([0.020, 0.0202])
    assert core["peak_rss_mb"] == 130.0 and core["rss_imported_mb"] == 125.0  # round 3's, the largest
    assert [r["peak_rss_mb"] for r in core["rounds"]] == [110.0, 120.0, 130.0]
    assert core["seconds"] == 4.5 and core["other_load_cores"] == 1.2
    assert core["scanner"] == "c"
    # A file that failed in one round is a failure of the method, with that round's reason.
    failed = corpus["raw"]["highdicom"]["results"][1]
    assert (failed["ok"], failed["detail"]) == (False, "bad")
    # Cutting the pooled result back to one round gives that round's samples only, round 1 without the file's
    # first-sight call (the later rounds have none).
    assert round_results(corpus["raw"][BASELINE], 1)["results"][0]["samples"] == pytest.approx([0.020, 0.0202])
    assert round_results(corpus["raw"][BASELINE], 0)["results"][0]["samples"] == pytest.approx([0.0101, 0.0102])


def test_pooling_joins_dcmqi_start_up_timings() -> None:
    outputs = []
    for index in range(2):
        out = _output("dcmqi", [[0.01], [0.01], [0.01]], peak=50.0)
        out["startup"] = {"binary": "/bin/x", "binary_version_seconds": [0.001 * (index + 1)] * 3}
        out["child_peak_rss_mb"] = 9.0 if index == 0 else None
        outputs.append(out)
    pooled = pool(outputs)
    assert pooled["startup"] == {"binary": "/bin/x", "binary_version_seconds": [0.001] * 3 + [0.002] * 3}
    assert pooled["child_peak_rss_mb"] == 9.0


def test_report_gives_the_pooled_median_and_each_rounds_ratio() -> None:
    corpus, _ = _fake_runs(3)
    summary = summarise_corpus(corpus)
    core = summary["methods"][CORE]
    # Per file the median of all 7 pooled samples (10, 10.1, 10.2, 20, 20.2, 12, 12.12 ms) is 12 ms for the
    # baseline, 1.01 ms for the core (1, 1.01, 1.02, 1, 1.01, 1, 1.01).
    assert summary["rows"][BASELINE][0]["wall"] == pytest.approx(0.012)
    assert summary["rows"][CORE][0]["wall"] == pytest.approx(0.00101)
    assert core["ratio_vs_baseline"] == pytest.approx(11.88, abs=0.01)
    # Each round's ratio from that round's own medians (round 1 without its first-sight call: 10.15 / 1.015, then
    # 20.1 / 1.005, 12.06 / 1.005): round 2 ran while the baseline was slow.
    assert core["ratio_vs_baseline_rounds"] == [10.0, 20.0, 12.0]
    # First sight: the file's first call, round 1's (the later rounds run in the same, warm, process).
    assert summary["rows"][BASELINE][0]["first"] == pytest.approx(0.010)
    points = curve_points(corpus, summary)
    assert [p["items"] for p in points] == [10, 100]
    assert points[1]["methods"][CORE]["ratio_vs_baseline_rounds"] == [10.0, 20.0, 12.0]


def test_one_round_and_older_results_have_no_per_round_ratios() -> None:
    corpus, _ = _fake_runs(1)
    assert summarise_corpus(corpus)["methods"][CORE].get("ratio_vs_baseline_rounds") is None
    for raw in corpus["raw"].values():  # a results.json from before rounds
        raw.pop("rounds")
        for result in raw["results"]:
            result.pop("round_samples")
    summary = summarise_corpus(corpus)
    assert summary["methods"][CORE]["ratio_vs_baseline"] == pytest.approx(10.0, abs=0.01)
    assert summary["rows"][BASELINE][0]["first"] == pytest.approx(0.010)


def test_rendered_tables_show_the_per_round_range() -> None:
    corpus, _ = _fake_runs(3)
    results: dict = {
        "meta": {
            "date": "today",
            "quick": False,
            "command": "run",
            "git": "x",
            "machine": {"cpu": "cpu", "cores": 2, "ram_gb": 1, "load_start": "0"},
            "versions": {},
        },
        "corpora": {"real": corpus},
    }
    summarise(results)
    text = render(results)
    assert "per round (wall, min–max)" in text
    assert "10.00–20.00×" in text
    assert "Each corpus runs in 3 rounds" in text
    target = next(t for t in results["summary"]["targets"] if "real corpus" in t["target"])
    assert target["measured"].endswith("; per round 10.00–20.00×")


def _fake_method(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[list[str], dict]:
    """A method that records the files it is called on, and a job of three files (one it fails on)."""
    calls: list[str] = []

    def fake() -> Run:
        def run(path: Path, data: bytes) -> Outcome:
            calls.append(path.name)
            return Outcome(ok=path.name != "bad.dcm", found=len(data))

        return run

    monkeypatch.setitem(worker.FACTORIES, "fake", fake)
    files = []
    for name in ("a.dcm", "b.dcm", "bad.dcm"):
        (tmp_path / name).write_bytes(b"x" * 3)
        files.append({"path": str(tmp_path / name), "items": 1, "label": name})
    warm = tmp_path / "warm.dcm"
    warm.write_bytes(b"w")
    return calls, {"method": "fake", "files": files, "warmup": [str(warm)]}


def test_worker_takes_the_rounds_share_of_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls, job = _fake_method(monkeypatch, tmp_path)
    settings = round_settings({"repeat": 5, "min_samples": 2, "budget_seconds": 1e6}, 2)[1]
    out = worker.run_job({**job, **settings})
    assert [len(r["samples"]) for r in out["results"]] == [2, 2, 1]  # round 2's share of 5; a failure once
    assert calls[0] == "warm.dcm" and calls[1:4] == ["a.dcm", "b.dcm", "bad.dcm"]  # passes go round the list
    assert out["results"][2]["ok"] is False and out["results"][0]["found"] == 3


def test_a_serving_worker_runs_each_round_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls, job = _fake_method(monkeypatch, tmp_path)
    shares = round_settings({"repeat": 3, "min_samples": 1, "budget_seconds": 1e6}, 2)
    commands = io.StringIO(
        "".join(json.dumps({**share, "out": str(tmp_path / f"out-{i}.json")}) + "\n" for i, share in enumerate(shares))
    )
    replies = io.StringIO()
    worker.serve(job, commands, replies)
    assert replies.getvalue() == "ready\ndone\ndone\n"
    assert calls.count("warm.dcm") == 1  # warm-up once for both rounds
    rounds = [json.loads((tmp_path / f"out-{i}.json").read_text()) for i in range(2)]
    # A failure is timed once: round 2 does not try bad.dcm again, and still reports it failed.
    assert [[len(r["samples"]) for r in out["results"]] for out in rounds] == [[2, 2, 1], [1, 1, 0]]
    assert rounds[1]["results"][2]["ok"] is False
    assert calls.count("bad.dcm") == 1
    assert rounds[0]["rss_imported_mb"] == rounds[1]["rss_imported_mb"]  # one process, imported once
