"""SQL-on-FHIR v2 ViewDefinitions run by the HL7 FHIR core library's runner (`org.hl7.fhir.r5.utils.sql.Runner`).

The runner is in the `org.hl7.fhir.r5` jar that fhir_validator.py installs; RunViews.java drives it. The driver is
compiled once with `javac` into the validator's cache (`classes/<hash of the source>/`), then every call is one
JVM start for all views and inputs: the library's `Validator` checks each ViewDefinition (its issues are
returned), the `Runner` evaluates it over each input's NDJSON, and the rows come back as dicts (decimals as
`Decimal`). `query()` joins view rows with plain SQL in SQLite (the standard library's), the way a warehouse
joins SQL-on-FHIR views.

An input declares its FHIR version: "5.0" is parsed as R5 and runs the R5 views; "4.0" is parsed with the
library's R4 model and runs the R4 views (`r4_views`) with the R4 library's own runner,
`org.hl7.fhir.r4.utils.sql.Runner` (type-checked against `hl7.fhir.r4.core`, which fhir_validator.py builds).

    python tests/profile_validation/sql_on_fhir.py VIEWS_DIR NDJSON...   # prints each view's rows as JSON lines
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from fhir_validator import RELEASES, UnavailableError, cache_dir, install, package_dir

HERE = Path(__file__).resolve().parent
JAVA_SOURCE = HERE / "RunViews.java"
MAIN_CLASS = "RunViews"


@dataclass(frozen=True, slots=True)
class ViewInput:
    """One set of resources the views run over; references resolve within it."""

    name: str
    files: Sequence[Path]
    fhir_version: str = "5.0"
    """"5.0" (R5, the R5 views) or "4.0" (R4, the R4 views, run by the R4 runner)."""


@dataclass(frozen=True, slots=True)
class ViewIssue:
    view: str
    severity: str
    message: str


@dataclass(slots=True)
class ViewRun:
    issues: list[ViewIssue] = field(default_factory=list)
    """What the library's Validator says about the ViewDefinitions."""
    rows: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    """input name → view name → rows."""
    seconds: float = 0.0


def _java_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UnavailableError(f"{name} not found on PATH")
    return path


def compiled_classes(root: Path | None = None) -> Path:
    """The folder holding RunViews.class, compiled on first use (and after any change of the source)."""
    root = root or cache_dir()
    digest = hashlib.sha256(JAVA_SOURCE.read_bytes()).hexdigest()[:16]
    classes = root / "classes" / digest
    if (classes / f"{MAIN_CLASS}.class").is_file():
        return classes
    javac = _java_tool("javac")
    classes.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=classes.parent) as work:
        done = subprocess.run(
            [javac, "-nowarn", "-cp", str(root / "lib" / "*"), "-d", work, str(JAVA_SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"javac {JAVA_SOURCE.name} failed:\n{done.stderr[-4000:]}")
        try:
            Path(work).rename(classes)
        except OSError:  # another process compiled it meanwhile
            if not (classes / f"{MAIN_CLASS}.class").is_file():
                raise
    return classes


def ready(root: Path | None = None) -> Path:
    """Install (or find) the validator's jars and packages and compile the driver; raises UnavailableError."""
    root = install(root)
    compiled_classes(root)
    return root


def run_views(
    views: Sequence[Path],
    inputs: Iterable[ViewInput],
    root: Path | None = None,
    output: Path | None = None,
    r4_views: Sequence[Path] = (),
) -> ViewRun:
    """Validate `views` (R5) and `r4_views` (R4, only when an input is R4) and run each over each input of its
    version, in one JVM. The rows are kept in `output` (`<input>/<view>.json`, read back with `read_rows`) when
    given."""
    root = root or cache_dir()
    java = _java_tool("java")
    classes = compiled_classes(root)
    inputs = list(inputs)
    with tempfile.TemporaryDirectory() as work:
        work_path = Path(work)
        rows = output or work_path / "rows"
        job = {
            "views": [str(v) for v in views],
            "r4Views": [str(v) for v in r4_views],
            "inputs": [
                {"name": i.name, "fhirVersion": i.fhir_version, "files": [str(f) for f in i.files]} for i in inputs
            ],
            "output": str(rows),
        }
        (work_path / "job.json").write_text(json.dumps(job))
        command = [
            java,
            f"-Duser.home={root}",
            "-Djava.awt.headless=true",
            "-cp",
            os.pathsep.join([str(classes), str(root / "lib" / "*")]),
            MAIN_CLASS,
            str(package_dir(root, *RELEASES["r5"].core.split("#"))),
            str(package_dir(root, *RELEASES["r4"].core.split("#"))),
            str(work_path / "job.json"),
        ]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"RunViews failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return ViewRun(
            issues=[ViewIssue(**json.loads(line)) for line in done.stdout.splitlines() if line.startswith("{")],
            rows=read_rows(rows, [i.name for i in inputs]),
            seconds=seconds,
        )


def read_rows(folder: Path, inputs: Iterable[str]) -> dict[str, dict[str, list[dict]]]:
    """input name → view name → rows, as RunViews wrote them into `folder` (decimals as `Decimal`)."""
    return {
        name: {
            path.stem: json.loads(path.read_text(), parse_float=Decimal)
            for path in sorted((folder / name).glob("*.json"))
        }
        for name in inputs
    }


def query(sql: str, tables: Mapping[str, list[dict]]) -> list[dict]:
    """Run `sql` in an in-memory SQLite database holding each view's rows as a table (decimals as text, so no
    digit is lost; booleans as 0/1)."""
    connection = sqlite3.connect(":memory:")
    try:
        for name, rows in tables.items():
            columns = list(rows[0]) if rows else ["_empty"]
            connection.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
            connection.executemany(
                f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})",
                [[_sql_value(row.get(c)) for c in columns] for row in rows],
            )
        cursor = connection.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    finally:
        connection.close()


def _sql_value(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return json.dumps(value, default=str)
    return value


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    views = sorted(Path(argv[0]).glob("*.json"))
    run = run_views(views, [ViewInput("input", [Path(a) for a in argv[1:]])], ready())
    for issue in run.issues:
        print(f"{issue.severity}: {issue.view}: {issue.message}", file=sys.stderr)
    for view, rows in run.rows["input"].items():
        for row in rows:
            print(json.dumps({"view": view} | row, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
