"""The researcher's sample lake (`sr2fhir_synth.sample`): plausible values in the units real reports use, lesions
that keep their tracking ids over a patient's studies and change the way lesions do, and research-table rows that
carry the sites and units the reports had. No Spark: `map_sr` is the mapping the job runs."""

from __future__ import annotations

import ast
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import cast

import pydicom.sr._concepts_dict as concepts
import pytest

from sr2fhir_core import MappingResult, WarningCode, map_sr
from sr2fhir_synth import sample
from sr2fhir_synth.corpus import bad_inputs
from sr2fhir_synth.spec import Measurement

TO_ML = {"mm3": 0.001, "ml": 1.0}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    directory = tmp_path_factory.mktemp("sample-lake")
    return directory, sample.write_sample_lake(directory)


@pytest.fixture(scope="module")
def mapped(lake: tuple[Path, list[Path]]) -> list[MappingResult]:
    return [map_sr(p) for p in lake[1]]


@pytest.fixture(scope="module")
def measurement_rows(mapped: list[MappingResult]) -> list[dict]:
    return [row for r in mapped if r.mapped for row in r.rows["measurements"]]


def _value(m: Measurement) -> float:
    assert m.value is not None
    return float(m.value)


def _by_concept(reports: list[sample.SampleReport]) -> dict[str, list[tuple[Measurement, str]]]:
    found: dict[str, list[tuple[Measurement, str]]] = defaultdict(list)
    for report in reports:
        for group in report.spec.groups:
            site = group.finding_sites[0].site.meaning
            for m in group.measurements:
                found[m.concept.meaning].append((m, site))
    return found


def _concepts_by_protocol(reports: list[sample.SampleReport]) -> dict[str, set[str]]:
    """Study Description → the measurement concepts its reports carry."""
    found: dict[str, set[str]] = defaultdict(set)
    for report in reports:
        description = report.spec.study.description or ""
        found[description] |= {m.concept.meaning for group in report.spec.groups for m in group.measurements}
    return found


def test_cohort_shape() -> None:
    reports = sample.sample_reports()
    studies = Counter(r.patient for r in reports)
    assert 6 <= len(studies) <= 8
    assert all(2 <= n <= 4 for n in studies.values())
    assert all(1 <= len(r.spec.groups) <= 4 for r in reports)
    assert len({r.spec.study.study_instance_uid for r in reports}) == len(reports)  # one report per study
    for p in studies:
        dates = [r.spec.study.study_date for r in reports if r.patient == p]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)
        assert len({r.spec.patient.patient_id for r in reports if r.patient == p}) == 1


def test_values_are_in_plausible_ranges_and_units() -> None:
    found = _by_concept(sample.sample_reports())
    assert {m.unit for m, _ in found["Long Axis"]} == {sample.MM}
    assert all(3.0 <= _value(m) <= 80.0 for m, _ in found["Long Axis"])
    assert all(_value(m) <= 80.0 for m, _ in found["Short Axis"])
    volumes_ml = [_value(m) * TO_ML[m.unit.value] for m, _ in found["Volume"] if m.unit is not None]
    assert len(volumes_ml) == len(found["Volume"]) and all(0.05 <= v <= 500.0 for v in volumes_ml)
    assert {m.unit.value for m, _ in found["Volume"] if m.unit} == {"mm3", "ml"}  # both, as real producers write
    assert all(
        -100.0 <= _value(m) <= 200.0 and m.derivation == sample.MEAN for m, _ in found["Attenuation Coefficient"]
    )
    assert {m.unit for m, _ in found["Attenuation Coefficient"]} == {sample.HU}
    assert {m.unit_spelling for m, _ in found["Attenuation Coefficient"]} == {None, "hnsf'U"}
    assert all(1.0 <= _value(m) <= 25.0 and m.derivation == sample.MAXIMUM for m, _ in found["SUVbw"])
    assert {m.unit for m, _ in found["SUVbw"]} == {sample.SUV_BW_UNIT}
    # Mean ADC in um2/s as dcmqi writes it; every lesion here is a metastasis: the malignant range, not a cyst's.
    adc = found["Apparent Diffusion Coefficient"]
    assert adc and all(600.0 <= _value(m) <= 1300.0 and m.derivation == sample.MEAN for m, _ in adc)
    assert {m.unit for m, _ in adc} == {sample.UM2_PER_S}
    # Radiomics: unitless as pyradiomics writes them; sphericity in (0, 1]; entropies in bits, positive and below
    # log2 of 256 grey levels (twice that for the GLCM's joint histogram).
    for feature, high in (
        (sample.SPHERICITY, 1.0),
        (sample.INTENSITY_HISTOGRAM_ENTROPY, 8.0),
        (sample.GLCM_JOINT_ENTROPY, 16.0),
    ):
        values = found[feature.meaning]
        assert values and {m.unit for m, _ in values} == {sample.NO_UNITS}, feature
        assert all(0.0 < _value(m) <= high for m, _ in values), feature
        assert all(re.fullmatch(r"\d\.\d{6}E[+-]\d\d", m.value or "") for m, _ in values), feature
    assert {site for m, site in found["Sphericity"]}.isdisjoint(n.meaning for n in sample.NODES)
    # What each protocol can measure: no attenuation on MR, no ADC on CT, uptake only on PET.
    by_protocol = _concepts_by_protocol(sample.sample_reports())
    assert "Apparent Diffusion Coefficient" in by_protocol[sample.LIVER_MR.description]
    assert "Attenuation Coefficient" not in by_protocol[sample.LIVER_MR.description]
    assert all("Apparent Diffusion Coefficient" not in concepts for d, concepts in by_protocol.items() if "MR" not in d)
    assert all("SUVbw" not in concepts for d, concepts in by_protocol.items() if "PET" not in d)
    # RECIST 1.1 measurability at baseline: non-nodal targets from 10 mm long axis, nodes from 15 mm short axis.
    for plan in sample.PATIENTS:
        for lesion in plan.lesions:
            if lesion.label.startswith("Target") and lesion.nodal:
                assert lesion.short_axis_mm is not None and lesion.short_axis_mm >= 15.0
            elif lesion.label.startswith("Target"):
                assert lesion.long_axis_mm >= 10.0


def test_lesions_keep_their_tracking_ids_and_change_plausibly() -> None:
    reports = sample.sample_reports()
    courses: dict[tuple[int, str], list[tuple[int, str, float]]] = defaultdict(list)
    for report in reports:
        for group in report.spec.groups:
            assert group.tracking_uid and group.tracking_identifier and group.finding_sites
            long_axis = next(_value(m) for m in group.measurements if m.concept == sample.LONG_AXIS)
            courses[(report.patient, group.tracking_uid)].append(
                (report.time_point, group.tracking_identifier, long_axis)
            )
    uids_per_patient = defaultdict(set)
    for (patient, uid), course in courses.items():
        uids_per_patient[uid].add(patient)
        assert len({identifier for _, identifier, _ in course}) == 1  # same Tracking Identifier at every time point
        assert [t for t, _, _ in course] == list(range(course[0][0], course[0][0] + len(course)))
    assert all(len(patients) == 1 for patients in uids_per_patient.values())  # a UID never crosses patients
    changes = [course[-1][2] / course[0][2] for course in courses.values() if len(course) > 1]
    assert any(c >= 1.2 for c in changes), "a growing lesion"
    assert any(c <= 0.8 for c in changes), "a shrinking lesion"
    assert all(0.3 <= c <= 1.6 for c in changes), "no implausible jumps"
    assert any(course[0][0] > 0 for course in courses.values()), "a new lesion at a follow-up"


def test_a_responding_node_becomes_normal_again() -> None:
    """The docstring's promise: a target node (short axis from 15 mm) falls under RECIST 1.1's 10 mm."""
    short_axes: dict[str, list[float]] = defaultdict(list)
    for report in sample.sample_reports():
        for group in report.spec.groups:
            for m in group.measurements:
                if m.concept == sample.SHORT_AXIS and group.tracking_uid:
                    short_axes[group.tracking_uid].append(_value(m))
    assert any(course[0] >= 15.0 and course[-1] < 10.0 for course in short_axes.values())


def test_the_cohort_docstring_counts_what_the_plan_has() -> None:
    """`PATIENTS`' docstring states the cohort's size; a change to the plan must change the text too."""
    module = ast.parse(Path(sample.__file__).read_text())
    body = module.body
    index = next(
        i for i, node in enumerate(body) if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "PATIENTS"
    )
    docstring = ast.literal_eval(cast(ast.Expr, body[index + 1]).value)
    numbers = re.search(r"(\d+) patients, (\d+) reports, (\d+) tracked lesions \((\d+) of them new", docstring)
    assert numbers is not None, docstring
    new = sum(lesion.course[0] is None for plan in sample.PATIENTS for lesion in plan.lesions)
    lesions = sum(len(plan.lesions) for plan in sample.PATIENTS)
    assert tuple(map(int, numbers.groups())) == (len(sample.PATIENTS), len(sample.sample_reports()), lesions, new)


def test_the_lake_is_deterministic_and_has_the_bad_inputs(lake: tuple[Path, list[Path]], tmp_path: Path) -> None:
    directory, paths = lake
    again = sample.write_sample_lake(tmp_path)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(directory) for p in paths]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(again, paths, strict=True))
    names = {str(p.relative_to(directory)) for p in paths}
    assert set(bad_inputs(b"", 0)) <= names
    assert any(p.suffix == "" for p in paths)


def test_the_lake_maps_and_its_rows_carry_sites_and_units(
    mapped: list[MappingResult], measurement_rows: list[dict]
) -> None:
    outcomes = Counter((r.record.status.value, r.record.reason) for r in mapped)
    assert outcomes == {
        ("mapped", None): len(sample.sample_reports()),
        ("rejected", "not_dicom"): 1,
        ("rejected", "corrupt"): 1,
        ("rejected", "not_tid1500"): 1,
    }
    assert all(row["finding_site_display"] and row["finding_site_system"] for row in measurement_rows)
    assert all(row["tracking_uid"] and row["tracking_identifier"] and row["time_point"] for row in measurement_rows)
    units = {(row["measurement_code"], row["unit_code"]) for row in measurement_rows}
    assert units == {
        ("103339001", "mm"),
        ("103340004", "mm"),
        ("118565006", "mm3"),
        ("118565006", "ml"),
        ("112031", "[hnsf'U]"),  # hnsf'U corrected to valid UCUM
        ("126401", "g/ml{SUVbw}"),
        ("113041", "um2/s"),
        *((feature.value, "1") for feature in sample.RADIOMICS),
    }
    # Every NUM of every report is a row; none is left in an unmapped_content warning, and the declared IBSI
    # scheme gives its features a system (no unknown_coding_scheme warning).
    reports = sample.sample_reports()
    assert len(measurement_rows) == sum(len(g.measurements) for r in reports for g in r.spec.groups)
    measured = {m.concept.value for r in reports for g in r.spec.groups for m in g.measurements}
    warnings = [w for r in mapped if r.mapped for w in r.warnings]
    assert not any(
        f"({code}," in w.message for w in warnings if w.code is WarningCode.UNMAPPED_CONTENT for code in measured
    )
    assert not any(w.code is WarningCode.UNKNOWN_CODING_SCHEME for w in warnings)
    ibsi = {
        row["measurement_system"]
        for row in measurement_rows
        if row["measurement_code"] in {f.value for f in sample.RADIOMICS}
    }
    assert ibsi == {f"urn:oid:{sample.IBSI_SCHEME.uid}"}
    lateral = {row["finding_site_display"]: row["laterality_display"] for row in measurement_rows}
    assert lateral["Kidney"] == "Left" and lateral["Liver"] is None
    for row in measurement_rows:
        if row["measurement_code"] == "118565006":
            assert 0.05 <= row["value"] * TO_ML[row["unit_code"]] <= 500.0


def test_codes_match_the_dicom_dictionary() -> None:
    """The codes the sample adds to the catalog's, checked against pydicom's copy of PS3.16."""
    dictionary = cast(dict[str, dict[str, dict[str, tuple[str, list[int]]]]], concepts.concepts)
    for code in sample.CODES:
        entries = dictionary[code.scheme].values()
        meanings = {entry[code.value][0].lower() for entry in entries if code.value in entry}
        assert code.meaning.lower() in meanings, code
