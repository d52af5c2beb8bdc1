"""Report model → flat rows for the research tables, and the Arrow schema of each table, defined once.

One `measurements` row per numeric measurement (derived ones included) and one `qualitative_evaluations`
row per evaluation, each carrying the context a cohort query filters on (patient, study, finding, site,
tracking ids) so that no join back to FHIR is needed. Codes are canonical (legacy SNOMED-RT → SNOMED CT)
and systems are FHIR system URIs, exactly as in the NDJSON, so both sides join on (system, code).
The `observation_id` columns are the FHIR ids of the matching Observations.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from . import codes
from .content import Code
from .datetimes import dicom_date
from .fhir.ids import document_resource_id
from .tid1500.model import FindingSite, Measurement, MeasurementGroup, MeasurementReport, QualitativeEvaluation

_CONTEXT_FIELDS = [
    pa.field("source_path", pa.string()),
    pa.field("sop_instance_uid", pa.string(), nullable=False),
    pa.field("study_instance_uid", pa.string()),
    pa.field("series_instance_uid", pa.string()),
    pa.field("patient_id", pa.string()),
    pa.field("study_date", pa.date32()),
    pa.field("group_index", pa.int32()),
    pa.field("group_template", pa.string()),
    pa.field("tracking_identifier", pa.string()),
    pa.field("tracking_uid", pa.string()),
    pa.field("time_point", pa.string()),
    pa.field("finding_category_code", pa.string()),
    pa.field("finding_category_display", pa.string()),
    pa.field("finding_code", pa.string()),
    pa.field("finding_system", pa.string()),
    pa.field("finding_display", pa.string()),
    pa.field("finding_site_code", pa.string()),
    pa.field("finding_site_system", pa.string()),
    pa.field("finding_site_display", pa.string()),
    pa.field("laterality_code", pa.string()),
    pa.field("laterality_display", pa.string()),
]

MEASUREMENTS_SCHEMA = pa.schema(
    [
        *_CONTEXT_FIELDS,
        pa.field("measurement_code", pa.string()),
        pa.field("measurement_system", pa.string()),
        pa.field("measurement_display", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("value_text", pa.string()),
        pa.field("unit_code", pa.string()),
        pa.field("unit_display", pa.string()),
        pa.field("value_qualifier_code", pa.string()),
        pa.field("value_qualifier_display", pa.string()),
        pa.field("derivation_code", pa.string()),
        pa.field("derivation_display", pa.string()),
        pa.field("method_code", pa.string()),
        pa.field("method_display", pa.string()),
        pa.field("algorithm_name", pa.string()),
        pa.field("algorithm_version", pa.string()),
        pa.field("is_derived", pa.bool_()),
        pa.field("observation_uid", pa.string()),
        pa.field("content_position", pa.string()),
        pa.field("observation_id", pa.string(), nullable=False),
        pa.field("group_observation_id", pa.string()),
    ]
)
"""One row per numeric measurement. `value` is null when the SR has none (see `value_qualifier_code`);
`value_text` is the number exactly as written in the SR."""

QUALITATIVE_EVALUATIONS_SCHEMA = pa.schema(
    [
        *_CONTEXT_FIELDS,
        pa.field("evaluation_code", pa.string()),
        pa.field("evaluation_system", pa.string()),
        pa.field("evaluation_display", pa.string()),
        pa.field("value_code", pa.string()),
        pa.field("value_system", pa.string()),
        pa.field("value_display", pa.string()),
        pa.field("value_text", pa.string()),
        pa.field("algorithm_name", pa.string()),
        pa.field("algorithm_version", pa.string()),
        pa.field("observation_uid", pa.string()),
        pa.field("content_position", pa.string()),
        pa.field("observation_id", pa.string(), nullable=False),
        pa.field("group_observation_id", pa.string()),
    ]
)
"""One row per qualitative evaluation; group columns are null for report-level evaluations."""

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "measurements": MEASUREMENTS_SCHEMA,
    "qualitative_evaluations": QUALITATIVE_EVALUATIONS_SCHEMA,
}


_NO_CODE: tuple[None, None, None] = (None, None, None)


class _RowBuilder:
    """Builds rows for one report. What all rows of a group share (document, group, finding and finding
    site columns) is computed once per group and copied into each row."""

    def __init__(self, report: MeasurementReport, source_path: str | None, code_systems: codes.CodeSystems) -> None:
        document = report.document
        self.sop = document.sop_instance_uid or ""
        self.systems = code_systems
        self._codes: dict[Code, tuple[str, str | None, str]] = {}
        self._contexts: dict[tuple[int, ...] | None, dict] = {}
        study_day = dicom_date(document.study_date)
        self.document_fields = {
            "source_path": source_path,
            "sop_instance_uid": self.sop,
            "study_instance_uid": document.study_instance_uid,
            "series_instance_uid": document.series_instance_uid,
            "patient_id": document.patient.id,
            "study_date": date.fromisoformat(study_day) if study_day else None,
        }

    def code(self, code: Code | None) -> tuple[str | None, str | None, str | None]:
        """(code, display, system) of the canonical code."""
        if code is None:
            return _NO_CODE
        fields = self._codes.get(code)
        if fields is None:
            canonical = codes.canonical(code)
            fields = (canonical.value, canonical.meaning or None, self.systems.system(canonical.scheme))
            self._codes[code] = fields
        return fields

    def site_fields(self, site: FindingSite | None) -> dict:
        site_code, site_display, site_system = self.code(site.site if site else None)
        laterality_code, laterality_display, _ = self.code(site.laterality if site else None)
        return {
            "finding_site_code": site_code,
            "finding_site_system": site_system,
            "finding_site_display": site_display,
            "laterality_code": laterality_code,
            "laterality_display": laterality_display,
        }

    def context(self, group: MeasurementGroup | None) -> dict:
        """Document, group and finding columns, and the group's finding site; once per group."""
        key = group.position if group is not None else None
        fields = self._contexts.get(key)
        if fields is None:
            fields = dict(self.document_fields)
            if group is None:
                fields.update(dict.fromkeys(_GROUP_COLUMNS))
                fields.update(self.site_fields(None))
            else:
                category_code, category_display, _ = self.code(group.finding_category)
                finding_code, finding_display, finding_system = self.code(group.finding)
                fields.update(
                    {
                        "group_index": group.index,
                        "group_template": group.template_id,
                        "tracking_identifier": group.tracking_identifier,
                        "tracking_uid": group.tracking_uid,
                        "time_point": group.time_point,
                        "finding_category_code": category_code,
                        "finding_category_display": category_display,
                        "finding_code": finding_code,
                        "finding_system": finding_system,
                        "finding_display": finding_display,
                        "group_observation_id": document_resource_id("Observation", self.sop, group.position),
                    }
                )
                fields.update(self.site_fields(group.finding_site))
            self._contexts[key] = fields
        return fields

    def measurement(self, measurement: Measurement, group: MeasurementGroup | None, derived: bool) -> dict:
        row = dict(self.context(group))
        site = measurement.finding_site
        # Usually the very object the group has (inherited): `is` spares the dataclass comparison.
        if group is None or (site is not group.finding_site and site != group.finding_site):
            row.update(self.site_fields(site))
        concept_code, concept_display, concept_system = self.code(measurement.concept)
        derivation_code, derivation_display, _ = self.code(measurement.derivation)
        method_code, method_display, _ = self.code(measurement.method)
        unit, qualifier, algorithm = measurement.unit, measurement.qualifier, measurement.algorithm
        row["measurement_code"] = concept_code
        row["measurement_system"] = concept_system
        row["measurement_display"] = concept_display
        row["value"] = measurement.value
        row["value_text"] = measurement.numeric_value
        row["unit_code"] = unit.value if unit else None
        row["unit_display"] = (unit.meaning or None) if unit else None
        row["value_qualifier_code"] = qualifier.value if qualifier else None
        row["value_qualifier_display"] = (qualifier.meaning or None) if qualifier else None
        row["derivation_code"] = derivation_code
        row["derivation_display"] = derivation_display
        row["method_code"] = method_code
        row["method_display"] = method_display
        row["algorithm_name"] = algorithm.name if algorithm else None
        row["algorithm_version"] = algorithm.version if algorithm else None
        row["is_derived"] = derived
        row["observation_uid"] = measurement.observation_uid
        row["content_position"] = ".".join(map(str, measurement.position))
        row["observation_id"] = document_resource_id("Observation", self.sop, measurement.position)
        return row

    def evaluation(self, evaluation: QualitativeEvaluation, group: MeasurementGroup | None) -> dict:
        row = dict(self.context(group))
        concept_code, concept_display, concept_system = self.code(evaluation.concept)
        value_code, value_display, value_system = self.code(evaluation.value_code)
        algorithm = evaluation.algorithm
        row["evaluation_code"] = concept_code
        row["evaluation_system"] = concept_system
        row["evaluation_display"] = concept_display
        row["value_code"] = value_code
        row["value_system"] = value_system
        row["value_display"] = value_display
        row["value_text"] = evaluation.value_text
        row["algorithm_name"] = algorithm.name if algorithm else None
        row["algorithm_version"] = algorithm.version if algorithm else None
        row["observation_uid"] = evaluation.observation_uid
        row["content_position"] = ".".join(map(str, evaluation.position))
        row["observation_id"] = document_resource_id("Observation", self.sop, evaluation.position)
        return row


_GROUP_COLUMNS = (
    "group_index",
    "group_template",
    "tracking_identifier",
    "tracking_uid",
    "time_point",
    "finding_category_code",
    "finding_category_display",
    "finding_code",
    "finding_system",
    "finding_display",
    "group_observation_id",
)


def build_rows(
    report: MeasurementReport, source_path: str | None, code_systems: codes.CodeSystems
) -> dict[str, list[dict]]:
    """Rows per table, in document order; each row has exactly its table's columns."""
    builder = _RowBuilder(report, source_path, code_systems)
    measurements: list[dict] = []
    evaluations: list[dict] = []
    for group in report.groups:
        measurements.extend(builder.measurement(m, group, False) for m in group.measurements)
        evaluations.extend(builder.evaluation(e, group) for e in group.qualitative_evaluations)
    for derived in report.derived_measurements:
        measurements.append(builder.measurement(derived.measurement, None, True))
        for group in derived.groups:
            measurements.extend(builder.measurement(m, group, False) for m in group.measurements)
            evaluations.extend(builder.evaluation(e, group) for e in group.qualitative_evaluations)
    evaluations.extend(builder.evaluation(e, None) for e in report.qualitative_evaluations)
    return {"measurements": measurements, "qualitative_evaluations": evaluations}


def to_arrow(table: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[table])
