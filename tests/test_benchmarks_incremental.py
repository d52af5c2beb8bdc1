"""The benchmark's incremental pass: which files each scheduled run sees, and how the report shows it (the
job itself is replaced by a recorder: what the runs cost is measured by `python -m benchmarks.run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import report, spark


def _lake(root: Path, shards: int, per_shard: int) -> list[Path]:
    folders = []
    for k in range(shards):
        folder = root / f"shard-{k}"
        (folder / "sub").mkdir(parents=True)
        for i in range(per_shard):
            (folder / "sub" / f"{i:04d}.dcm").write_bytes(b"x" * (i + 1))
        folders.append(folder)
    return folders


def test_incremental_runs_share_one_output_then_add_change_and_delete_one_file_in_a_hundred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = _lake(tmp_path / "cache", shards=2, per_shard=150)
    seen: list[dict] = []

    def recorder(inputs: list[Path], work: Path, overrides: object = (), *, output: Path | None = None) -> dict:
        files = {p.relative_to(inputs[0]): p.stat().st_mtime for p in inputs[0].rglob("*") if p.is_file()}
        seen.append({"inputs": inputs, "output": output, "files": files})
        return {"ok": True, "files_found": len(files)}

    monkeypatch.setattr(spark, "run_job", recorder)
    runs = spark.incremental_runs(shards, tmp_path / "work")

    assert [r["scenario"] for r in runs] == ["first", "nothing changed", "1 % new", "1 % changed, 1 % deleted"]
    assert len({str(s["output"]) for s in seen}) == 1 and seen[0]["output"] is not None
    first, unchanged, grown, last = (s["files"] for s in seen)
    assert len(first) == 297 and unchanged == first
    assert len(grown) == 300 and grown.items() >= first.items()  # the held-back files arrive, nothing else moves
    deleted = set(grown) - set(last)
    changed = {p for p in last if last[p] != grown[p]}
    assert len(deleted) == 3 and len(changed) == 3 and not deleted & changed
    assert {last[p] for p in changed} == {2_000_000_000}
    assert all(s.is_dir() for s in shards)  # the cached lake itself is untouched
    assert not (tmp_path / "work").exists()  # the copy and the output go afterwards


def test_incremental_table_shows_each_scenario_and_its_steps() -> None:
    runs = [
        {"scenario": "first", "ok": True, "files_found": 2500, "files": 2500, "removed": {"files": 0, "inputs": 0},
         "elapsed_seconds": 12.5, "step_seconds": {"list": 0.7, "map": 6.0, "sinks": 4.0, "ledger": 0.6}},
        {"scenario": "1 % changed, 1 % deleted", "ok": True, "files_found": 2475, "files": 25,
         "removed": {"files": 25, "inputs": 25}, "elapsed_seconds": 20.1,
         "step_seconds": {"list": 1.0, "remove": 9.0, "map": 1.5, "sinks": 7.0, "ledger": 0.5}},
        {"scenario": "broken", "ok": False},
    ]  # fmt: skip
    lines = report._incremental_table(runs)
    assert "2,500 of them" in lines[0]
    rows = [line for line in lines if line.startswith("| ") and "run s" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| first", "| 1 % changed, 1 % deleted"]
    assert rows[0].split(" | ")[6] == "–"  # no remove step in a first run
    assert rows[1].split(" | ")[3:7] == ["25", "20.10", "1.00", "9.00"]
    assert report._incremental_table([{"scenario": "broken", "ok": False}]) == []
