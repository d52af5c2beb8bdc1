"""The SQL-on-FHIR v2 ViewDefinitions in views/ give back the research tables from FHIR R5 alone, and those in
views/r4/ from FHIR R4 alone, proven by an independent engine: the HL7 FHIR core library's runners, R5 and R4
(tests/profile_validation/sql_on_fhir.py, RunViews.java).

Generated reports (`every_row_spec()`, one with qualified values, `random_spec(seed, features=FIDELITY_FEATURES)`)
and every mapped corpus
file are mapped in process (`map_sr`), under the ballot and the STU1 structure and as R4, and written as NDJSON, one
resource per (type, id) as the job's export writes them. One JVM validates the views (the library's `Validator`:
no issue allowed) and runs them over every input; views/measurements.sql and views/qualitative_evaluations.sql
join the view rows in SQLite; the result must equal, as a multiset of rows over the columns the FHIR carries, the
rows the core produced for the same inputs. The lists (`finding_sites`, `concept_modifiers`) are compared per row
through the `finding_site` and `observation_component` views, as multisets (no runner-independent position).
A control input with two values changed in the FHIR shows that the comparison sees a difference.

Skips with a reason when java, javac, mvn or npm are missing (unless SR2FHIR_REQUIRE_VALIDATOR=1, as in CI), and
the corpus half when ../shared is absent.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import functools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from conftest import REPO_ROOT, shared_path

from sr2fhir_core import FhirVersion, IgVersion, MappingOptions, MappingResult, dumps_json, map_sr
from sr2fhir_synth import FIDELITY_FEATURES, ReportSpec, every_row_spec, random_spec, write_sr
from sr2fhir_synth.spec import Code, Measurement

sys.path.insert(0, str(Path(__file__).resolve().parent / "profile_validation"))
from sql_on_fhir import UnavailableError, ViewInput, ViewIssue, query, read_rows, ready, run_views

pytestmark = pytest.mark.views

VIEWS = REPO_ROOT / "views"
GENERATED_SEEDS = range(40)
RELEASES = {
    "ballot": MappingOptions(),
    "stu1": MappingOptions(ig_version=IgVersion.STU1),
    "r4": MappingOptions(fhir_version=FhirVersion.R4),
}
"""The outputs the views run over: R5 under both IG structures, and R4 (ballot structure), whose rows are the
R4 views' (views/r4/, with patient.json and imaging_study.json from views/) run by the R4 library's runner."""
R4_VIEWS = [*sorted((VIEWS / "r4").glob("*.json")), VIEWS / "patient.json", VIEWS / "imaging_study.json"]

FINDING_COLUMNS = (
    "study_instance_uid",
    "patient_id",
    "study_date",
    "tracking_identifier",
    "tracking_uid",
    "finding_category_code",
    "finding_category_display",
    "finding_code",
    "finding_system",
    "finding_display",
    "finding_site_code",
    "finding_site_system",
    "finding_site_display",
    "laterality_code",
    "laterality_display",
)
"""The study, patient, tracking and finding context both tables share."""

SHARED_COLUMNS = {
    "measurements": (
        *FINDING_COLUMNS,
        "measurement_code",
        "measurement_system",
        "measurement_display",
        "value",
        "unit_code",
        "unit_display",
        "value_qualifier_code",
        "value_qualifier_display",
        "derivation_code",
        "derivation_display",
        "method_code",
        "method_display",
        "algorithm_name",
        "algorithm_version",
        "is_derived",
        "observation_uid",
        "observation_id",
        "group_observation_id",
    ),
    "qualitative_evaluations": (
        *FINDING_COLUMNS,
        "evaluation_code",
        "evaluation_system",
        "evaluation_display",
        "value_code",
        "value_system",
        "value_display",
        "value_text",
        "algorithm_name",
        "algorithm_version",
        "observation_uid",
        "observation_id",
        "group_observation_id",
    ),
}
"""Per table, the columns the FHIR carries (views/README.md lists the others and why)."""

SQL = {table: (VIEWS / f"{table}.sql").read_text() for table in SHARED_COLUMNS}
SITE_FIELDS = (
    "code",
    "system",
    "display",
    "laterality_code",
    "laterality_display",
    "modifier_code",
    "modifier_system",
    "modifier_display",
)
MODIFIER_FIELDS = ("code", "system", "display", "value_code", "value_system", "value_display")
DERIVATION = ("http://dicom.nema.org/resources/ontology/DCM", "121401")


@dataclass(frozen=True, slots=True)
class Mapped:
    """What the core made of a set of inputs: the resources (one per type and id) and the table rows."""

    resources: list[dict]
    rows: dict[str, list[dict]]


def _collect(results: Iterable[MappingResult]) -> Mapped:
    resources: dict[tuple[str, str], dict] = {}
    rows: dict[str, list[dict]] = {table: [] for table in SHARED_COLUMNS}
    reports: set[str | None] = set()
    for result in results:
        assert result.mapped, result.record
        if result.record.sop_instance_uid in reports:
            # A copy of a report (the corpus has some) adds table rows under its own source_path, but no
            # resource: its resources have the first copy's ids.
            continue
        reports.add(result.record.sop_instance_uid)
        for resource in result.resources:
            # Shared resources (Patient, ImagingStudy, Devices) have the same id in every report: one line each.
            resources.setdefault((resource["resourceType"], resource["id"]), resource)
        for table in rows:
            rows[table].extend(result.rows[table])
    return Mapped(list(resources.values()), rows)


def _qualified_values_spec() -> ReportSpec:
    """A report whose first group's measurements have a value *and* a Numeric Value Qualifier (the qualifier
    goes to an Observation note) and units without a meaning (Quantity.unit is then the code): cases the
    generator does not make."""
    spec = every_row_spec(seed=1)
    qualifier = Code("114006", "DCM", "Measurement failure")

    def qualified(measurement: Measurement) -> Measurement:
        if measurement.value is None or measurement.unit is None:
            return measurement
        return dataclasses.replace(
            measurement, qualifier=qualifier, unit=dataclasses.replace(measurement.unit, meaning="")
        )

    first, *others = spec.groups
    first = dataclasses.replace(first, measurements=tuple(qualified(m) for m in first.measurements))
    return dataclasses.replace(spec, groups=(first, *others))


@functools.cache
def _generated_reports() -> tuple[bytes, ...]:
    """The generated SRs, written once for every release (writing them costs ten times mapping them)."""
    specs = [
        every_row_spec(),
        _qualified_values_spec(),
        *(random_spec(seed, features=FIDELITY_FEATURES) for seed in GENERATED_SEEDS),
    ]
    return tuple(write_sr(spec) for spec in specs)


def _generated(options: MappingOptions) -> Mapped:
    return _collect(map_sr(report, options) for report in _generated_reports())


def _corpus(options: MappingOptions) -> Mapped:
    corpus = shared_path() / "corpus"
    results = (map_sr(path, options) for path in sorted(corpus.rglob("*.dcm")))
    return _collect(result for result in results if result.mapped)


def _altered(mapped: Mapped) -> tuple[Mapped, set[str]]:
    """The control: a copy whose FHIR says something else for one measurement's value and one group's tracking
    identifier; returns the ids of the Observations whose rows must now differ."""
    resources = copy.deepcopy(mapped.resources)
    changed: set[str] = set()
    measurement = next(r for r in resources if "valueQuantity" in r and "hasMember" not in r)
    measurement["valueQuantity"]["value"] += 1
    changed.add(measurement["id"])
    tracking = next(
        r for r in resources if r["resourceType"] == "BodyStructure" and r.get("identifier", [{}])[0].get("value")
    )
    tracking["identifier"][0]["value"] += " (altered)"
    reference = {"reference": f"BodyStructure/{tracking['id']}"}
    for group in resources:
        if reference in group.get("focus", ()) and "hasMember" in group:
            changed.update(member["reference"].removeprefix("Observation/") for member in group["hasMember"])
    return Mapped(resources, mapped.rows), changed


def _inputs() -> dict[str, Callable[[], Mapped]]:
    """The inputs the views run over, by name, each mapped only when a test needs it."""
    inputs: dict[str, Callable[[], Mapped]] = {
        f"generated-{release}": functools.partial(_generated, options) for release, options in RELEASES.items()
    }
    if (shared_path() / "corpus").is_dir():
        inputs |= {f"corpus-{release}": functools.partial(_corpus, options) for release, options in RELEASES.items()}
    inputs["every-row"] = lambda: _collect([map_sr(_generated_reports()[0])])
    inputs["control"] = lambda: _control()[0]
    return inputs


def _fhir_version(name: str) -> str:
    """The FHIR version of an input, as RunViews takes it: "4.0" runs the R4 views with the R4 runner."""
    release = RELEASES.get(name.rsplit("-", 1)[-1])
    return "4.0" if release is not None and release.fhir_version is FhirVersion.R4 else "5.0"


@functools.cache
def _mapped(name: str) -> Mapped:
    return _inputs()[name]()


@functools.cache
def _control() -> tuple[Mapped, frozenset[str]]:
    control, changed = _altered(_mapped("generated-ballot"))
    return control, frozenset(changed)


@dataclass(frozen=True, slots=True)
class Outcome:
    issues: list[ViewIssue]
    rows: dict[str, dict[str, list[dict]]]
    """input name → view name → rows, from the HL7 runner."""

    def mapped(self, name: str) -> Mapped:
        if name not in self.rows:
            pytest.skip(f"shared corpus not found at {shared_path()}")
        return _mapped(name)


def _write_ndjson(path: Path, resources: list[dict]) -> Path:
    path.write_bytes(b"".join(dumps_json(resource) + b"\n" for resource in resources))
    return path


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Outcome:
    try:
        root = ready()
    except UnavailableError as exc:
        if os.environ.get("SR2FHIR_REQUIRE_VALIDATOR") == "1":
            pytest.fail(f"SR2FHIR_REQUIRE_VALIDATOR=1 but the HL7 SQL-on-FHIR runner is unavailable: {exc}")
        pytest.skip(f"HL7 SQL-on-FHIR runner unavailable: {exc}")
    names = list(_inputs())
    # One runner per session: xdist workers share the session's temporary folder; the first to take the lock
    # maps every input and runs the JVM once, the other reads its rows (the mapping is deterministic).
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    folder = shared / "views"
    with open(shared / "views.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "issues.json").is_file():
            folder.mkdir(exist_ok=True)
            inputs = [
                ViewInput(n, [_write_ndjson(folder / f"{n}.ndjson", _mapped(n).resources)], _fhir_version(n))
                for n in names
            ]
            run = run_views(sorted(VIEWS.glob("*.json")), inputs, root, folder / "rows", R4_VIEWS)
            print(f"HL7 runner: {len(inputs)} inputs, {run.seconds:.1f} s (one JVM)")
            (folder / "issues.json").write_text(json.dumps([dataclasses.asdict(i) for i in run.issues]))
    issues = [ViewIssue(**i) for i in json.loads((folder / "issues.json").read_text())]
    return Outcome(issues, read_rows(folder / "rows", names))


# --- normalising both sides to comparable values ----------------------------------------------------------


def _number(value: object) -> float | None:
    """A FHIR decimal (the view's text or Decimal) or the table's double, as the double the table holds."""
    return None if value is None else float(Decimal(str(value)))


def _expected(table: str, row: dict) -> tuple:
    """A table row over the shared columns, as the FHIR can say it (views/README.md, "Differences")."""
    values = {column: row[column] for column in SHARED_COLUMNS[table]}
    values["study_date"] = row["study_date"].isoformat() if row["study_date"] else None
    if table == "measurements":
        values["value"] = _number(row["value"])
        if row["value"] is None:
            # No valueQuantity: the unit is not in the FHIR; the qualifier's meaning is in dataAbsentReason.
            values["unit_code"] = values["unit_display"] = None
        else:
            # Quantity.unit is the unit's meaning, or its code when the SR gave no meaning; a qualifier beside a
            # value is in the note, whose meaning is not read back.
            values["unit_display"] = row["unit_display"] or row["unit_code"]
            values["value_qualifier_display"] = None
    return tuple(values.values())


def _actual(table: str, row: dict) -> tuple:
    values = {column: row[column] for column in SHARED_COLUMNS[table]}
    if table == "measurements":
        values["value"] = _number(row["value"])
        values["is_derived"] = bool(row["is_derived"])
    return tuple(values.values())


def _table(outcome: Outcome, name: str, table: str) -> list[dict]:
    return query(SQL[table], outcome.rows[name])


def _differences(expected: Counter, actual: Counter, table: str) -> str:
    columns = SHARED_COLUMNS[table]
    by_id = {row[columns.index("observation_id")]: row for row in actual}
    lines = []
    for row in list((expected - actual).elements())[:5]:
        other = by_id.get(row[columns.index("observation_id")])
        diff = {c: (e, other[i] if other else "<no row>") for i, (c, e) in enumerate(zip(columns, row, strict=True))}
        lines.append(str({c: v for c, v in diff.items() if other is None or v[0] != v[1]}))
    return f"{sum((expected - actual).values())} rows missing, {sum((actual - expected).values())} extra:\n" + (
        "\n".join(lines)
    )


# --- the tests ----------------------------------------------------------------------------------------------


def test_the_views_are_valid_for_the_hl7_validator(outcome: Outcome) -> None:
    assert outcome.issues == []
    assert {path.stem for path in VIEWS.glob("*.json")} <= set(outcome.rows["generated-ballot"])
    assert {path.stem for path in R4_VIEWS} <= set(outcome.rows["generated-r4"])


@pytest.mark.parametrize("release", list(RELEASES))
@pytest.mark.parametrize("table", list(SHARED_COLUMNS))
@pytest.mark.parametrize("source", ["generated", "corpus"])
def test_views_rebuild_the_table(outcome: Outcome, source: str, release: str, table: str) -> None:
    name = f"{source}-{release}"
    expected = Counter(_expected(table, row) for row in outcome.mapped(name).rows[table])
    actual = Counter(_actual(table, row) for row in _table(outcome, name, table))
    print(f"{name} {table}: {sum(actual.values())} rows")
    assert sum(expected.values()) > 0
    assert actual == expected, _differences(expected, actual, table)


def _sites_by_structure(view_rows: dict[str, list[dict]]) -> dict[str, Counter]:
    sites: dict[str, Counter] = {}
    for row in view_rows["finding_site"]:
        site = (
            row["site_code"],
            row["site_system"],
            row["site_display"],
            row["laterality_code"],
            row["laterality_display"],
            row["modifier_code"],
            row["modifier_system"],
            row["modifier_display"],
        )
        sites.setdefault(row["body_structure_key"], Counter())[site] += 1
    return sites


def _bare_site(row: dict) -> Counter:
    """STU1: a single site without modifiers is the Observation's bodySite code."""
    if row["body_site_code"] is None:
        return Counter()
    return Counter({(row["body_site_code"], row["body_site_system"], row["body_site_display"], *[None] * 5): 1})


@pytest.mark.parametrize("release", list(RELEASES))
@pytest.mark.parametrize("source", ["generated", "corpus"])
def test_views_rebuild_the_lists(outcome: Outcome, source: str, release: str) -> None:
    """`finding_sites` and `concept_modifiers` of every row, as multisets; the derivation parameters that are
    components are among the row's `derivation_parameters` (the others are Observations in `derivedFrom`)."""
    name = f"{source}-{release}"
    mapped = outcome.mapped(name)
    view_rows = outcome.rows[name]
    sites = _sites_by_structure(view_rows)
    groups = {row["member_key"]: row for row in view_rows["measurement_group"]}
    components: dict[str, list[dict]] = {}
    for row in view_rows["observation_component"]:
        components.setdefault(row["observation_key"], []).append(row)

    def site_list(row: dict | None) -> Counter:
        if row is None:
            return Counter()
        return sites.get(row["site_key"], Counter()) if row["site_key"] else _bare_site(row)

    observations = {
        "measurements": {row["observation_id"]: row for row in view_rows["measurement"]},
        "qualitative_evaluations": {row["observation_id"]: row for row in view_rows["qualitative_evaluation"]},
    }
    checked = 0
    for table, by_id in observations.items():
        for expected in mapped.rows[table]:
            observation = by_id[expected["observation_id"]]
            # A measurement's sites are its own (or inherited) link; an evaluation's are its group's.
            owner = observation if table == "measurements" else groups.get(observation["observation_key"])
            assert site_list(owner) == Counter(tuple(s[f] for f in SITE_FIELDS) for s in expected["finding_sites"])
            own = components.get(observation["observation_key"], [])
            modifiers = Counter(
                tuple(c[f"component_{f}"] if not f.startswith("value") else c[f] for f in MODIFIER_FIELDS)
                for c in own
                if c["value_code"] is not None and (c["component_system"], c["component_code"]) != DERIVATION
            )
            assert modifiers == Counter(tuple(m[f] for f in MODIFIER_FIELDS) for m in expected["concept_modifiers"])
            if table == "measurements":
                parameters = Counter(
                    (c["component_code"], _number(c["value"]), c["unit_code"])
                    for c in own
                    if c["value"] is not None or c["value_absent"]
                )
                listed = Counter(
                    (p["code"], p["value"], p["unit_code"] if p["value"] is not None else None)
                    for p in expected["derivation_parameters"]
                )
                assert parameters <= listed
            checked += 1
    assert checked > 0


def test_a_changed_fhir_value_changes_the_rows(outcome: Outcome) -> None:
    """Control: the comparison above sees a change in the FHIR (one value, one tracking identifier)."""
    table = "measurements"
    control, changed = _control()
    expected = Counter(_expected(table, row) for row in control.rows[table])
    actual = Counter(_actual(table, row) for row in _table(outcome, "control", table))
    ids = SHARED_COLUMNS[table].index("observation_id")
    differing = {row[ids] for row in (expected - actual)} | {row[ids] for row in (actual - expected)}
    assert differing == {i for i in changed if i in {row[ids] for row in expected}}
    assert len(differing) >= 2


def _keyless(value: object) -> object:
    """A join key without its runner's convention: the HL7 runner's keys are `Type/id`, sqlonfhir's the id."""
    if isinstance(value, str) and "/" in value and value.split("/", 1)[0] in RESOURCE_TYPES:
        return value.split("/", 1)[1]
    return value


RESOURCE_TYPES = frozenset({"Patient", "ImagingStudy", "Observation", "BodyStructure", "Device"})
NOTEBOOK_VIEWS = ("measurement", "measurement_group", "body_structure", "patient", "imaging_study", "algorithm")
"""The views the measurements table needs: what the notebook runs with sqlonfhir."""


def test_sqlonfhir_agrees_with_the_hl7_runner(outcome: Outcome) -> None:
    """The Python engine the notebook uses (sqlonfhir, on fhirpathpy) gives the HL7 runner's rows for the views
    the measurements table needs, on the every-row report. Keys are compared without their runner's convention
    (both are opaque join keys), decimals as numbers."""
    evaluate = pytest.importorskip("sqlonfhir").evaluate
    resources = [orjson.loads(dumps_json(r)) for r in outcome.mapped("every-row").resources]

    def normalised(rows: list[dict]) -> Counter:
        return Counter(
            tuple(sorted((k, _number(v) if isinstance(v, float | Decimal) else _keyless(v)) for k, v in row.items()))
            for row in rows
        )

    for name in NOTEBOOK_VIEWS:
        view = orjson.loads((VIEWS / f"{name}.json").read_bytes())
        hl7 = outcome.rows["every-row"][name]
        assert len(hl7) > 0
        assert normalised(evaluate(resources, view)) == normalised(hl7), name
