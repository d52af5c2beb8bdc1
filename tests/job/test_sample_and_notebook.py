"""The README's first command, `sr2fhir sample`, as a user runs it (its own process and local Spark
session), and the researcher notebooks executed over its output (`sr2fhir_synth.sample`'s lake: 7 patients
followed over 2-4 studies, plus three bad inputs)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sr2fhir_synth.sample import PATIENTS, sample_reports

from .helpers import REPO_ROOT

REPORTS = len(sample_reports())
TRACKED_LESIONS = sum(len(patient.lesions) for patient in PATIENTS)
LESION_TIME_POINTS = sum(size is not None for p in PATIENTS for lesion in p.lesions for size in lesion.course)

pytestmark = [pytest.mark.spark]


CATALOG_SCHEMA = "sr2fhir"
IJ = "org.apache.derby.tools.ij"
IJ_OPTIONS = ("-Dij.maximumDisplayWidth=4000",)
"""Derby's ij cuts a column's text at 128 characters unless told otherwise."""


def metastore_settings(root: Path) -> list[str]:
    """`--set`s of a local session with Spark's built-in Hive catalog (pyspark ships Hive 2.3 and Derby): an embedded
    Derby metastore and a warehouse under `root`."""
    prefix = "spark.settings.spark"
    return [
        f"{prefix}.sql.catalogImplementation=hive",
        f"{prefix}.sql.warehouse.dir={root / 'warehouse'}",
        f"{prefix}.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
    ]


@pytest.fixture(scope="module")
def sample_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The sample, its tables registered (`output.catalog_schema`) in a Hive metastore beside it (`metastore/`)."""
    output = tmp_path_factory.mktemp("sample-output")
    metastore = tmp_path_factory.mktemp("metastore")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    settings = ["output.progress_interval_seconds=1", f"output.catalog_schema={CATALOG_SCHEMA}"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.cli",
            "sample",
            "--output",
            str(output),
            *(argument for setting in [*settings, *metastore_settings(metastore)] for argument in ("--set", setting)),
        ],
        cwd=metastore,  # Derby writes its derby.log into the working folder
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return output, done


def test_sample_command_writes_the_lake_and_runs_the_job(
    sample_output: tuple[Path, subprocess.CompletedProcess],
) -> None:
    output, done = sample_output
    assert "FHIR NDJSON: file://" in done.stdout
    summary_files = list((output / "runs").glob("*.json"))
    assert len(summary_files) == 1
    summary = json.loads(summary_files[0].read_text())
    lake_files = [p for p in (output / "lake").rglob("*") if p.is_file()]
    assert summary["files"]["found"] == len(lake_files) == REPORTS + 3
    assert summary["documents"] == {"inputs": REPORTS + 3, "mapped": REPORTS, "rejected": 3, "failed": 0}
    assert summary["rows"]["measurements"] > 0
    assert (Path(summary["fhir"]["manifest"].removeprefix("file://"))).is_file()
    assert "mapping: " in done.stderr  # the driver's progress line
    # The notices every local start printed stay out of the log (spark.quiet_jvm_logs): Spark's banner for its
    # default log profile, the native-Hadoop check, and the warning that the host name resolves to loopback.
    for notice in ("Using Spark's default log4j profile", "NativeCodeLoader", "resolves to a loopback address"):
        assert notice not in done.stderr
    for name in ("measurements", "qualitative_evaluations", "documents"):
        assert (output / "tables" / name / "_delta_log").is_dir()


def test_the_sample_tables_are_registered_in_the_hive_metastore(
    sample_output: tuple[Path, subprocess.CompletedProcess],
) -> None:
    """`output.catalog_schema` with Spark's built-in Hive catalog: once the run's process has ended, its embedded
    Derby metastore holds each Delta table as an external table of the schema at the output's folder. Read with
    Derby's own ij (a JVM without Spark: ~2 s); the same tables queried by name through Spark are
    tests/job/test_maintenance.py's."""
    import pyspark

    output, _ = sample_output
    metastore = next(output.parent.glob("metastore*/metastore_db"))  # the fixture's, beside the output
    jars = Path(pyspark.__file__).parent / "jars"
    derby = ("derby", "derbytools", "derbyshared")
    class_path = os.pathsep.join(str(next(jars.glob(f"{name}-1*.jar"))) for name in derby)
    query = (
        f"connect 'jdbc:derby:{metastore}';\n"
        "SELECT 'table ' || d.NAME || '.' || t.TBL_NAME || ' ' || t.TBL_TYPE || ' '"
        " || CAST(p.PARAM_VALUE AS VARCHAR(100)) || ' ' || CAST(sp.PARAM_VALUE AS VARCHAR(4000))"
        " FROM TBLS t JOIN DBS d ON t.DB_ID = d.DB_ID JOIN SDS s ON t.SD_ID = s.SD_ID"
        " JOIN SERDE_PARAMS sp ON sp.SERDE_ID = s.SERDE_ID AND sp.PARAM_KEY = 'path'"
        " JOIN TABLE_PARAMS p ON p.TBL_ID = t.TBL_ID AND p.PARAM_KEY = 'spark.sql.sources.provider';\n"
    )
    done = subprocess.run(
        ["java", "-cp", class_path, f"-Dderby.system.home={metastore.parent}", *IJ_OPTIONS, IJ],
        input=query,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    registered = sorted(line.split() for line in done.stdout.splitlines() if line.startswith("table "))
    names = ("documents", "measurements", "qualitative_evaluations", "resources")
    assert registered == [
        ["table", f"{CATALOG_SCHEMA}.{name}", "EXTERNAL_TABLE", "delta", f"file:{output / 'tables' / name}"]
        for name in names
    ], done.stdout[-3000:]


@pytest.mark.parametrize(
    ("notebook_name", "figures"),
    [
        ("cohort_lesion_volumes.ipynb", ["lesion-volumes.png"]),
        ("longitudinal_lesions.ipynb", ["lesion-courses.png", "sum-of-diameters.png"]),
    ],
)
def test_notebook_runs_on_the_sample_tables(
    sample_output: tuple[Path, subprocess.CompletedProcess],
    monkeypatch: pytest.MonkeyPatch,
    notebook_name: str,
    figures: list[str],
) -> None:
    """Each notebook runs to the end over the sample (its guards raise on implausible values) and saves its
    figures beside the output; the longitudinal one sees every tracked lesion at every time point the sample
    has, and its polars and DuckDB answers equal its pandas one (the dev extra installs both, so neither may be
    skipped here)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    output, _ = sample_output
    monkeypatch.setenv("SR2FHIR_OUTPUT", str(output))
    path = REPO_ROOT / "notebooks" / notebook_name
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for figure in figures:
        assert (output / figure).stat().st_size > 0
    text = "".join(
        o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert "guards passed" in text  # each notebook's guards ran (volumes, diameters, finding sites)
    if notebook_name == "longitudinal_lesions.ipynb":
        counts = re.search(r"(\d+) rows: (\d+) lesions of (\d+) patients", text)
        assert counts is not None, text[:2000]
        assert tuple(map(int, counts.groups())) == (LESION_TIME_POINTS, TRACKED_LESIONS, len(PATIENTS))
        for engine in ("polars", "duckdb"):
            assert f"{engine}: {LESION_TIME_POINTS} rows, the same as pandas" in text


def _notebook_sql(notebook: Path, name: str) -> str:
    """The string assigned to `name` in a code cell of the notebook."""
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.parse("".join(cell["source"])).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return ast.literal_eval(node.value)
    raise AssertionError(f"{notebook.name} assigns no {name}")


def test_the_documented_sql_is_the_one_the_notebook_runs_in_duckdb() -> None:
    """docs/research-tables.md gives one SQL text for Spark SQL and DuckDB; the notebook runs it in DuckDB against
    pandas, so the page's query is checked with it. (No Spark session: cheap.)"""
    page = (REPO_ROOT / "docs" / "research-tables.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", page, flags=re.DOTALL)
    assert len(blocks) == 1
    documented = "\n".join(line for line in blocks[0].splitlines() if not line.startswith("--"))
    run = _notebook_sql(REPO_ROOT / "notebooks" / "longitudinal_lesions.ipynb", "LONGITUDINAL_SQL")
    assert documented.strip() == run.strip()
