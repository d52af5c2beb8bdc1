"""A short seeded slice of the fuzz campaign (benchmarks/fuzz.py) over the real corpus, run in two parts to go
through a resume, the second on two workers: every finding kind must stay at zero, and every mutation is counted
once. The full campaign (a million mutations) is run by hand;
its counts are in benchmarks/FUZZ.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import fuzz

SLICE = 600
"""About 30 s on one core (a second worker start included): CI's share of the campaign."""
SEED = 20_260_000
"""Not the full campaign's seed: CI explores other mutations than the recorded run."""


@pytest.mark.corpus
def test_fuzz_slice_finds_nothing(corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzz, "BATCH", 50)  # several batches in flight on the two workers
    campaign = fuzz.Campaign(tmp_path / "fuzz", corpus_dir, SEED)
    campaign.run(SLICE // 2)
    # Resumed from the saved state, on two workers whose batches finish out of order.
    state = fuzz.Campaign(tmp_path / "fuzz", corpus_dir, SEED).run(SLICE, workers=2)
    assert state.next_index == SLICE
    counts = state.counts
    assert counts["mutations"]["total"] == SLICE
    assert not counts.get("findings"), (dict(counts["findings"]), state.findings[:10])
    assert counts["fast_reader"]["decided"] > SLICE // 3, counts["fast_reader"]
    assert counts["pydicom_outcomes"]["mapped/-"] > 0  # the mutations leave some reports mappable


@pytest.mark.corpus
def test_recheck_times_slow_findings_again(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`recheck` re-times each kept `slow` finding from its index alone, and the report counts those still over."""
    monkeypatch.setattr(fuzz, "RECHECK_RUNS", 2)
    seeds = fuzz.load_seeds(corpus_dir)  # once for both rechecks (re-encoding the seeds takes seconds)
    monkeypatch.setattr(fuzz, "load_seeds", lambda corpus: seeds)
    state = fuzz.State(seed=SEED, core="test")
    for index in (3, 4):
        state.findings.append(
            {"index": index, "kind": "slow", "reader": "pydicom", "seed": "", "operators": "", "size": 0, "detail": ""}
        )
    state.findings.append(
        {"index": 5, "kind": "memory", "reader": "auto", "seed": "", "operators": "", "size": 0, "detail": ""}
    )
    monkeypatch.setattr(fuzz, "SECONDS_PER_MB", 1e-9)  # every input over
    assert sorted(fuzz.recheck(state, corpus_dir)) == ["3 pydicom", "4 pydicom"]
    assert all(entry["slow"] and entry["cpu"] > 0 for entry in state.rechecks.values())
    monkeypatch.setattr(fuzz, "SECONDS_PER_MB", 1e9)  # none over
    fuzz.recheck(state, corpus_dir)
    assert not any(entry["slow"] for entry in state.rechecks.values())
    report = fuzz.markdown(fuzz.State.from_json(state.to_json()))
    assert "| slow [pydicom] | 0 | 0 of 2 |" in report
    assert "- 3: slow [pydicom]" in report and "(within budget)" in report
