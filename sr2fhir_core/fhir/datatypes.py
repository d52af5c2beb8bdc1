"""FHIR datatypes from report values: Coding, CodeableConcept, Quantity, Identifier, Reference."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from .. import codes
from ..content import Code
from ..errors import MappingWarning, WarningCode


class CodingContext:
    """Turns DICOM codes into FHIR Codings for one document, with its own declared coding schemes.

    The Coding and CodeableConcept of a code are built once per document and shared by every resource that
    uses them (resources are read-only once built).
    """

    def __init__(self, systems: codes.CodeSystems) -> None:
        self.systems = systems
        self._codings: dict[Code, dict] = {}
        self._concepts: dict[Code, dict] = {}

    def coding(self, code: Code) -> dict:
        coding = self._codings.get(code)
        if coding is None:
            canonical = codes.canonical(code)
            coding = {"system": self.systems.system(canonical.scheme), "code": canonical.value}
            if canonical.scheme_version:
                coding["version"] = canonical.scheme_version
            if canonical.meaning:
                coding["display"] = canonical.meaning
            self._codings[code] = coding
        return coding

    def concept(self, code: Code) -> dict:
        concept = self._concepts.get(code)
        if concept is None:
            concept = self._concepts[code] = {"coding": [self.coding(code)]}
        return concept

    def warnings(self) -> list[MappingWarning]:
        return [
            MappingWarning(
                WarningCode.UNKNOWN_CODING_SCHEME,
                "",
                f"coding scheme {designator!r} has no registered FHIR system; used {codes.system_for(designator)[0]}",
            )
            for designator in sorted(self.systems.unregistered)
        ]


def fixed(coding: Mapping) -> dict:
    """A CodeableConcept from one of the IG's fixed codings (profiles.py)."""
    return {"coding": [dict(coding)]}


def decimal_value(text: str | None) -> Decimal | None:
    """A DS value as an exact decimal; None when absent or not a finite number."""
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def quantity(value: Decimal, unit: Code | None, context: CodingContext) -> dict:
    result: dict = {"value": value}
    if unit is not None:
        coding = context.coding(unit)
        result["unit"] = unit.meaning or unit.value
        result["system"] = coding["system"]
        result["code"] = coding["code"]
    return result


def reference(resource_type: str, resource_id: str) -> dict:
    return {"reference": f"{resource_type}/{resource_id}"}


def uid_identifier(uid: str, type_coding: Mapping | None = None) -> dict:
    """An identifier holding a DICOM UID the way the IG writes them: system urn:dicom:uid, urn:oid: value."""
    identifier: dict = {}
    if type_coding is not None:
        identifier["type"] = fixed(type_coding)
    identifier["system"] = codes.DICOM_UID
    identifier["value"] = f"urn:oid:{uid}"
    return identifier
