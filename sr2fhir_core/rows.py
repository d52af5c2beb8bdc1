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

from . import codes, units
from .content import Code
from .datetimes import dicom_date
from .fhir.ids import document_resource_id
from .tid1500.model import (
    ConceptModifier,
    DerivationParameter,
    FindingSite,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    QualitativeEvaluation,
)

FINDING_SITE_TYPE = pa.struct(
    [
        pa.field("code", pa.string()),
        pa.field("system", pa.string()),
        pa.field("display", pa.string()),
        pa.field("laterality_code", pa.string()),
        pa.field("laterality_display", pa.string()),
        pa.field("modifier_code", pa.string()),
        pa.field("modifier_system", pa.string()),
        pa.field("modifier_display", pa.string()),
    ]
)
"""One Finding Site with its Laterality and Topographical modifier. A row's `finding_sites` lists every site
of its measurement (else of its group) in document order; the scalar `finding_site_*` and `laterality_*`
columns are the first of them."""

CONCEPT_MODIFIER_TYPE = pa.struct(
    [
        pa.field("code", pa.string()),
        pa.field("system", pa.string()),
        pa.field("display", pa.string()),
        pa.field("value_code", pa.string()),
        pa.field("value_system", pa.string()),
        pa.field("value_display", pa.string()),
    ]
)
"""A measurement's open concept modifier (HAS CONCEPT MOD CODE): a radiomics feature's "Image transformation",
a "Preprocessing operation"; empty list when it has none."""
DERIVATION_PARAMETER_TYPE = pa.struct(
    [
        pa.field("code", pa.string()),
        pa.field("system", pa.string()),
        pa.field("display", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("value_text", pa.string()),
        pa.field("unit_code", pa.string()),
    ]
)
"""A value the measurement was derived from (INFERRED FROM NUM), as `value`/`value_text`/`unit_code` are for the
measurement itself."""

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
    pa.field("finding_sites", pa.list_(FINDING_SITE_TYPE)),
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
        pa.field("concept_modifiers", pa.list_(CONCEPT_MODIFIER_TYPE)),
        pa.field("derivation_parameters", pa.list_(DERIVATION_PARAMETER_TYPE)),
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
        pa.field("concept_modifiers", pa.list_(CONCEPT_MODIFIER_TYPE)),
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
_NO_SITE = dict.fromkeys(FINDING_SITE_TYPE.names)


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

    def site_fields(self, sites: tuple[FindingSite, ...]) -> dict:
        listed = [self.site(site) for site in sites]
        first = listed[0] if listed else _NO_SITE
        return {
            "finding_site_code": first["code"],
            "finding_site_system": first["system"],
            "finding_site_display": first["display"],
            "laterality_code": first["laterality_code"],
            "laterality_display": first["laterality_display"],
            "finding_sites": listed,
        }

    def modifier(self, modifier: ConceptModifier) -> dict:
        code, display, system = self.code(modifier.concept)
        value_code, value_display, value_system = self.code(modifier.value)
        return {
            "code": code,
            "system": system,
            "display": display,
            "value_code": value_code,
            "value_system": value_system,
            "value_display": value_display,
        }

    def parameter(self, parameter: DerivationParameter) -> dict:
        code, display, system = self.code(parameter.concept)
        unit = parameter.unit
        return {
            "code": code,
            "system": system,
            "display": display,
            "value": None if parameter.number is None else float(parameter.number),
            "value_text": parameter.numeric_value,
            "unit_code": units.unit_code(unit, self.code(unit)[2] or "") if unit else None,
        }

    def site(self, site: FindingSite) -> dict:
        code, display, system = self.code(site.site)
        laterality_code, laterality_display, _ = self.code(site.laterality)
        modifier_code, modifier_display, modifier_system = self.code(site.topographical_modifier)
        return {
            "code": code,
            "system": system,
            "display": display,
            "laterality_code": laterality_code,
            "laterality_display": laterality_display,
            "modifier_code": modifier_code,
            "modifier_system": modifier_system,
            "modifier_display": modifier_display,
        }

    def context(self, group: MeasurementGroup | None) -> dict:
        """Document, group and finding columns, and the group's finding site; once per group."""
        key = group.position if group is not None else None
        fields = self._contexts.get(key)
        if fields is None:
            fields = dict(self.document_fields)
            if group is None:
                fields.update(dict.fromkeys(_GROUP_COLUMNS))
                fields.update(self.site_fields(()))
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
                fields.update(self.site_fields(group.finding_sites))
            self._contexts[key] = fields
        return fields

    def measurement(self, measurement: Measurement, group: MeasurementGroup | None, derived: bool) -> dict:
        row = dict(self.context(group))
        sites = measurement.finding_sites
        # Usually the very object the group has (inherited): `is` spares the tuple comparison.
        if group is None or (sites is not group.finding_sites and sites != group.finding_sites):
            row.update(self.site_fields(sites))
        concept_code, concept_display, concept_system = self.code(measurement.concept)
        derivation_code, derivation_display, _ = self.code(measurement.derivation)
        method_code, method_display, _ = self.code(measurement.method)
        unit, qualifier, algorithm = measurement.unit, measurement.qualifier, measurement.algorithm
        row["measurement_code"] = concept_code
        row["measurement_system"] = concept_system
        row["measurement_display"] = concept_display
        row["value"] = measurement.value
        row["value_text"] = measurement.numeric_value
        row["unit_code"] = units.unit_code(unit, self.code(unit)[2] or "") if unit else None  # as in FHIR
        row["unit_display"] = (unit.meaning or None) if unit else None
        row["value_qualifier_code"] = qualifier.value if qualifier else None
        row["value_qualifier_display"] = (qualifier.meaning or None) if qualifier else None
        row["derivation_code"] = derivation_code
        row["derivation_display"] = derivation_display
        row["method_code"] = method_code
        row["method_display"] = method_display
        row["concept_modifiers"] = [self.modifier(m) for m in measurement.concept_modifiers]
        row["derivation_parameters"] = [self.parameter(p) for p in measurement.derivation_parameters]
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
        row["concept_modifiers"] = [self.modifier(m) for m in evaluation.concept_modifiers]
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
    emitted: set[int] = set()
    """Groups whose rows are written: a derived measurement can name a group of the Imaging Measurements
    container by reference, whose rows are written once."""
    for group in report.groups:
        emitted.add(id(group))
        measurements.extend(builder.measurement(m, group, False) for m in group.measurements)
        evaluations.extend(builder.evaluation(e, group) for e in group.qualitative_evaluations)
    for derived in report.derived_measurements:
        measurements.append(builder.measurement(derived.measurement, None, True))
        for group in derived.groups:
            if id(group) in emitted:
                continue
            emitted.add(id(group))
            measurements.extend(builder.measurement(m, group, False) for m in group.measurements)
            evaluations.extend(builder.evaluation(e, group) for e in group.qualitative_evaluations)
    evaluations.extend(builder.evaluation(e, None) for e in report.qualitative_evaluations)
    return {"measurements": measurements, "qualitative_evaluations": evaluations}


def to_arrow(table: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TABLE_SCHEMAS[table])
