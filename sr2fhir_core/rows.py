"""Report model → flat rows for the research tables, and the Arrow schema of each table, defined once.

One `measurements` row per numeric measurement (derived ones included) and one `qualitative_evaluations`
row per evaluation, each carrying the context a cohort query filters on (patient, study, finding, site,
tracking ids) so that no join back to FHIR is needed. Codes are canonical (legacy SNOMED-RT → SNOMED CT)
and systems are FHIR system URIs, exactly as in the NDJSON, so both sides join on (system, code).
The `observation_id` columns are the FHIR ids of the matching Observations.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import pyarrow as pa

from . import codes
from .content import Code
from .datetimes import dicom_date
from .fhir.ids import document_resource_id
from .tid1500.model import Measurement, MeasurementGroup, MeasurementReport, QualitativeEvaluation

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


@lru_cache(maxsize=64)
def _column_names(prefix: str) -> tuple[str, str, str]:
    return f"{prefix}_code", f"{prefix}_display", f"{prefix}_system"


class _RowBuilder:
    def __init__(self, report: MeasurementReport, source_path: str | None, code_systems: codes.CodeSystems) -> None:
        document = report.document
        self.report = report
        self.sop = document.sop_instance_uid or ""
        self.systems = code_systems
        self._group_ids: dict[tuple[int, ...], str] = {}
        study_day = dicom_date(document.study_date)
        self.document_fields = {
            "source_path": source_path,
            "sop_instance_uid": self.sop,
            "study_instance_uid": document.study_instance_uid,
            "series_instance_uid": document.series_instance_uid,
            "patient_id": document.patient.id,
            "study_date": date.fromisoformat(study_day) if study_day else None,
        }

    def code_fields(self, prefix: str, code: Code | None, *, system: bool = True) -> dict:
        code_name, display_name, system_name = _column_names(prefix)
        if code is None:
            fields = {code_name: None, display_name: None}
            if system:
                fields[system_name] = None
            return fields
        canonical = codes.canonical(code)
        fields = {code_name: canonical.value, display_name: canonical.meaning or None}
        if system:
            fields[system_name] = self.systems.system(canonical.scheme)
        return fields

    def context_fields(self, group: MeasurementGroup | None, site_source) -> dict:
        site = site_source.finding_site if site_source is not None else None
        fields = dict(self.document_fields)
        fields.update(
            {
                "group_index": group.index if group else None,
                "group_template": group.template_id if group else None,
                "tracking_identifier": group.tracking_identifier if group else None,
                "tracking_uid": group.tracking_uid if group else None,
                "time_point": group.time_point if group else None,
            }
        )
        fields.update(self.code_fields("finding_category", group.finding_category if group else None, system=False))
        fields.update(self.code_fields("finding", group.finding if group else None))
        fields.update(self.code_fields("finding_site", site.site if site else None))
        fields.update(self.code_fields("laterality", site.laterality if site else None, system=False))
        return fields

    def group_id(self, group: MeasurementGroup | None) -> str | None:
        if group is None:
            return None
        group_id = self._group_ids.get(group.position)
        if group_id is None:
            group_id = self._group_ids[group.position] = document_resource_id("Observation", self.sop, group.position)
        return group_id

    def measurement(self, measurement: Measurement, group: MeasurementGroup | None, derived: bool) -> dict:
        row = self.context_fields(group, measurement)
        row.update(self.code_fields("measurement", measurement.concept))
        unit = measurement.unit
        qualifier = measurement.qualifier
        row.update(
            {
                "value": measurement.value,
                "value_text": measurement.numeric_value,
                "unit_code": unit.value if unit else None,
                "unit_display": (unit.meaning or None) if unit else None,
                "value_qualifier_code": qualifier.value if qualifier else None,
                "value_qualifier_display": (qualifier.meaning or None) if qualifier else None,
            }
        )
        row.update(self.code_fields("derivation", measurement.derivation, system=False))
        row.update(self.code_fields("method", measurement.method, system=False))
        algorithm = measurement.algorithm
        row.update(
            {
                "algorithm_name": algorithm.name if algorithm else None,
                "algorithm_version": algorithm.version if algorithm else None,
                "is_derived": derived,
                "observation_uid": measurement.observation_uid,
                "content_position": ".".join(map(str, measurement.position)),
                "observation_id": document_resource_id("Observation", self.sop, measurement.position),
                "group_observation_id": self.group_id(group),
            }
        )
        return row

    def evaluation(self, evaluation: QualitativeEvaluation, group: MeasurementGroup | None) -> dict:
        row = self.context_fields(group, group)
        row.update(self.code_fields("evaluation", evaluation.concept))
        row.update(self.code_fields("value", evaluation.value_code))
        algorithm = evaluation.algorithm
        row.update(
            {
                "value_text": evaluation.value_text,
                "algorithm_name": algorithm.name if algorithm else None,
                "algorithm_version": algorithm.version if algorithm else None,
                "observation_uid": evaluation.observation_uid,
                "content_position": ".".join(map(str, evaluation.position)),
                "observation_id": document_resource_id("Observation", self.sop, evaluation.position),
                "group_observation_id": self.group_id(group),
            }
        )
        return row


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
