"""Digests of what a job run wrote, to show that a change left the output as it was (or changed only what it meant
to): `python -m benchmarks.output_digest OUTPUT [--against DIGEST.json]`.

Per part of a local output:
- FHIR NDJSON of the newest export (`fhir/<run-id>/`): per resource type, the SHA-256 of its lines sorted (so the
  split into files does not count), and the count; the deletion Bundles likewise;
- each Delta table (`tables/*`, read with delta-rs, no Spark): the SHA-256 of its rows as a multiset (each row as
  canonical JSON without the columns that name the run: `run_id`, `processed_at`, and `mapping_fingerprint`,
  which names the mapping version), and the row count.
Identical digests mean byte-identical resources and equal row multisets, whatever the file layout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

RUN_COLUMNS = frozenset({"run_id", "processed_at", "mapping_fingerprint"})
"""Columns that differ between two runs of the same input by design."""


def _digest(lines: list[bytes]) -> str:
    hasher = hashlib.sha256()
    for line in sorted(lines):
        hasher.update(line)
        hasher.update(b"\n")
    return hasher.hexdigest()


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _json_value(value.tolist())
    return str(value)


def export_digest(output: Path) -> dict[str, dict[str, object]]:
    exports = sorted(p for p in (output / "fhir").iterdir() if p.is_dir()) if (output / "fhir").is_dir() else []
    if not exports:
        return {}
    newest = exports[-1]
    lines: dict[str, list[bytes]] = {}
    for path in sorted(newest.glob("*.ndjson")):
        kind = path.name.split(".", 1)[0]
        lines.setdefault(kind, []).extend(line for line in path.read_bytes().splitlines() if line)
    return {kind: {"count": len(found), "sha256": _digest(found)} for kind, found in sorted(lines.items())}


def table_digest(table: Path) -> dict[str, object]:
    from deltalake import DeltaTable

    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    encoded = [
        json.dumps({k: _json_value(v) for k, v in row.items() if k not in RUN_COLUMNS}, sort_keys=True).encode()
        for row in rows
    ]
    return {"count": len(encoded), "sha256": _digest(encoded)}


def digest(output: Path) -> dict[str, object]:
    tables = output / "tables"
    return {
        "fhir": export_digest(output),
        "tables": {t.name: table_digest(t) for t in sorted(tables.iterdir()) if (t / "_delta_log").is_dir()}
        if tables.is_dir()
        else {},
    }


def differences(before: dict, after: dict, where: str = "") -> list[str]:
    found = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, f"{where}{key}.")
        elif a != b:
            found.append(f"{where}{key}: {a} → {b}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="a local output folder of `sr2fhir run`")
    parser.add_argument("--against", type=Path, help="a digest written earlier: print the differences, exit 1 if any")
    args = parser.parse_args(argv)
    result = digest(args.output)
    if args.against is None:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    found = differences(json.loads(args.against.read_text()), result)
    print("\n".join(found) if found else "identical")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
