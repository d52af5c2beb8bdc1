"""FHIR datatypes from report values: Coding, CodeableConcept, Quantity, Identifier, Reference."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .. import codes, units
from ..content import Code
from ..errors import MappingWarning, WarningCode

_CODINGS: dict[tuple[Code, str], dict] = {}
_CODINGS_LIMIT = 65_536


class CodingContext:
    """Turns DICOM codes into FHIR Codings for one document, with its own declared coding schemes.

    A Coding depends only on the code and its system, so it is built once per process and shared by every
    resource that uses it (resources are read-only once built); the system is resolved per document.
    """

    def __init__(self, systems: codes.CodeSystems) -> None:
        self.systems = systems
        self._codings: dict[Code, dict] = {}
        self._concepts: dict[Code, dict] = {}
        self._quantities: dict[Code, dict] = {}
        self._unit_warnings: list[MappingWarning] = []

    def coding(self, code: Code) -> dict:
        """The Coding of a code; per document by the code itself, which spares the canonical form and the
        system lookup for every repeat (a unit or concept recurs in every measurement)."""
        coding = self._codings.get(code)
        if coding is None:
            coding = self._codings[code] = self._coding(code)
        return coding

    def _coding(self, code: Code) -> dict:
        canonical = codes.canonical(code)
        key = (canonical, self.systems.system(canonical.scheme))
        coding = _CODINGS.get(key)
        if coding is None:
            coding = {"system": key[1], "code": canonical.value}
            if canonical.scheme_version:
                coding["version"] = canonical.scheme_version
            if canonical.meaning:
                coding["display"] = canonical.meaning
            if len(_CODINGS) >= _CODINGS_LIMIT:
                _CODINGS.clear()
            _CODINGS[key] = coding
        return coding

    def concept(self, code: Code) -> dict:
        concept = self._concepts.get(code)
        if concept is None:
            concept = self._concepts[code] = {"coding": [self.coding(code)]}
        return concept

    def unit(self, unit: Code, position: tuple[int, ...] = ()) -> dict:
        """The unit elements of a Quantity (`unit`, `system`, `code`), made once per unit and document: UCUM
        codes checked and corrected (units.py), with one warning per unit and document, at `position` (the
        first content item with the unit)."""
        fields = self._quantities.get(unit)
        if fields is None:
            resolved = units.quantity_unit(
                codes.canonical(unit), self.coding(unit)["system"], ".".join(map(str, position))
            )
            if resolved.warning is not None:
                self._unit_warnings.append(resolved.warning)
            fields = self._quantities[unit] = {"unit": resolved.unit, "system": resolved.system, "code": resolved.code}
        return fields

    def warnings(self) -> list[MappingWarning]:
        return [
            MappingWarning(
                WarningCode.UNKNOWN_CODING_SCHEME,
                "",
                # Not the designator: messages never quote the file (a private scheme can name a site).
                f"a Coding Scheme Designator (0008,0102) has no registered FHIR system; its codes use "
                f"{codes.UNREGISTERED_SYSTEM_PREFIX}<designator>",
            )
            for _ in self.systems.unregistered  # one warning per designator, as before
        ] + self._unit_warnings


_FIXED: dict[int, dict] = {}


def fixed(coding: Mapping) -> dict:
    """A CodeableConcept from one of the IG's fixed codings (profiles.py), built once per coding: the
    codings are module constants, and resources treat what they share as read-only."""
    concept = _FIXED.get(id(coding))
    if concept is None:
        concept = _FIXED[id(coding)] = {"coding": [dict(coding)]}
    return concept


def quantity(value: Decimal, unit: Code | None, context: CodingContext, position: tuple[int, ...] = ()) -> dict:
    if unit is None:
        return {"value": value}
    return {"value": value} | context.unit(unit, position)


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
