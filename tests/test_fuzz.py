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
