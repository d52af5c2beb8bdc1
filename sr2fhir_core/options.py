"""Mapping options: the decisions the IG leaves open that a deployment may want to make differently.

Defaults are the project's recorded decisions (docs/mapping-decisions.md); every option is part of the
output's identity, so the job records the options it ran with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from .datetimes import normalise_offset


class DeviceFallback(StrEnum):
    INHERIT = "inherit"
    """An item without its own TID 4019 uses the nearest enclosing algorithm (group, then container), and
    the equipment Device only when there is none: DICOM's context inheritance."""
    EQUIPMENT = "equipment"
    """An item without its own TID 4019 uses the equipment Device (the IG's architecture text)."""


class SopClassSystem(StrEnum):
    IG = "ig"
    """The IG's pattern: system .../part04/sect_B.5, code = bare UID, display = SOP class name."""
    RFC3986 = "rfc3986"
    """FHIR core practice: system urn:ietf:rfc:3986, code urn:oid:<UID>."""


class IgVersion(StrEnum):
    BALLOT = "ballot"
    """1.0.0-ballot, the published artefact: image references and the tracking BodyStructure in `focus`."""
    STU1 = "stu1"
    """The post-ballot structure (ballot resolutions, NOTES §8.1): references in `derivedFrom`, tracking
    identifiers on the finding-site BodyStructure, source SR content item and source image selections."""


class FhirVersion(StrEnum):
    R5 = "r5"
    """FHIR R5 (5.0.0), the IG's version."""
    R4 = "r4"
    """FHIR R4 (4.0.1): the R5 resources converted (fhir/r4.py; docs/mapping-decisions.md, "R4 output")."""


class Reader(StrEnum):
    AUTO = "auto"
    PYDICOM = "pydicom"


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingOptions:
    default_timezone: str = "+00:00"
    """Offset for DICOM dates and times that carry none and whose SR has no Timezone Offset From UTC."""
    device_fallback: DeviceFallback = DeviceFallback.INHERIT
    sop_class_system: SopClassSystem = SopClassSystem.IG
    include_patient_demographics: bool = False
    """Copy name, birth date and sex into Patient. Off: the IG treats Patient as owned by the EMR and maps
    identifiers only, and a lake-wide export should not spread demographics further than it must."""
    code_systems: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Extra Coding Scheme Designator → FHIR system entries (e.g. a site's 99-private schemes)."""
    reader: Reader = Reader.AUTO
    ig_version: IgVersion = IgVersion.BALLOT
    """Which structure of the IG to write (docs/mapping-decisions.md §14)."""
    fhir_version: FhirVersion = FhirVersion.R5
    """The FHIR version of the resources; the table rows do not depend on it."""

    def __post_init__(self) -> None:
        offset = normalise_offset(self.default_timezone)
        if offset is None:
            raise ValueError(f"default_timezone must look like +01:00 or +0100, not {self.default_timezone!r}")
        object.__setattr__(self, "default_timezone", offset)
        object.__setattr__(self, "device_fallback", DeviceFallback(self.device_fallback))
        object.__setattr__(self, "sop_class_system", SopClassSystem(self.sop_class_system))
        object.__setattr__(self, "reader", Reader(self.reader))
        object.__setattr__(self, "ig_version", IgVersion(self.ig_version))
        object.__setattr__(self, "fhir_version", FhirVersion(self.fhir_version))
        object.__setattr__(self, "code_systems", MappingProxyType(dict(self.code_systems)))

    def as_dict(self) -> dict[str, object]:
        # ig_version appears only when it is not the default: the ballot output is unchanged, so the job's
        # mapping fingerprint of existing lakes (which hashes this dict) must not change either.
        # fhir_version likewise: absent for R5, so R5 lakes keep their fingerprint and a switch to R4 maps again.
        version = {} if self.ig_version is IgVersion.BALLOT else {"ig_version": self.ig_version.value}
        if self.fhir_version is not FhirVersion.R5:
            version["fhir_version"] = self.fhir_version.value
        return version | {
            "default_timezone": self.default_timezone,
            "device_fallback": self.device_fallback.value,
            "sop_class_system": self.sop_class_system.value,
            "include_patient_demographics": self.include_patient_demographics,
            "code_systems": dict(sorted(self.code_systems.items())),
            "reader": self.reader.value,
        }
