"""notebooks/measurements_from_fhir.ipynb runs to the end over the sample cohort's FHIR export: it gets the
measurements table from the NDJSON alone through the views (sqlonfhir) and its last cell checks the result
against the run's Delta table, raising on any difference.

No Spark: the export and the table are written the way the job writes them from the core's output (`map_sr` of
`sr2fhir_synth.sample`'s reports; NDJSON as `<Type>.00000.ndjson`, one line per type and id; the table with
`deltalake` from `TABLE_SCHEMAS`). tests/job/test_sample_and_notebook.py runs the other notebooks over the job's
real output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from sr2fhir_core import dumps_json, map_sr
from sr2fhir_core.rows import to_arrow
from sr2fhir_synth import write_sr
from sr2fhir_synth.sample import sample_reports

NOTEBOOK = REPO_ROOT / "notebooks" / "measurements_from_fhir.ipynb"


def _write_sample_run(output: Path) -> int:
    """The sample's FHIR export and measurements table under `output`; returns the number of measurements."""
    resources: dict[tuple[str, str], bytes] = {}
    rows: list[dict] = []
    for report in sample_reports():
        result = map_sr(write_sr(report.spec), source_path=report.path)
        assert result.mapped, result.record
        for resource in result.resources:
            resources.setdefault((resource["resourceType"], resource["id"]), dumps_json(resource))
        rows.extend(result.rows["measurements"])
    export = output / "fhir" / "20261207T000000000000Z-sample"
    export.mkdir(parents=True)
    for resource_type in sorted({t for t, _ in resources}):
        lines = [line for (t, _), line in sorted(resources.items()) if t == resource_type]
        (export / f"{resource_type}.00000.ndjson").write_bytes(b"".join(line + b"\n" for line in lines))
    (export / "manifest.json").write_text(json.dumps({"output": [], "deleted": [], "error": []}))
    deltalake = pytest.importorskip("deltalake")
    deltalake.write_deltalake(str(output / "tables" / "measurements"), to_arrow("measurements", rows))
    return len(rows)


def test_notebook_gets_the_measurements_table_from_the_ndjson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("sqlonfhir")
    measurements = _write_sample_run(tmp_path)
    monkeypatch.setenv("SR2FHIR_OUTPUT", str(tmp_path))
    monkeypatch.delenv("SR2FHIR_FHIR_EXPORT", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    text = "".join(
        o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert f"{measurements} measurements" in text
    assert f"{measurements} distinct rows: the views give the table's rows" in text
