"""FHIR R5 resources (as the core builds them) → FHIR R4 (4.0.1) resources that say the same: pure, deterministic.

What R4 has natively is written natively; what it cannot say goes into the official cross-version extensions
(`http://hl7.org/fhir/5.0/StructureDefinition/extension-<Resource>.<element>`, defined by the path maps of
`hl7.fhir.xver-extensions`: an element's value type there is the `value[x]` of its extension, a backbone
element's children are sub-extensions named by the child). ImagingSelection, which R4 lacks, becomes a `Basic`
of the same id carrying its elements as those extensions, and every reference to it is rewritten to that Basic.
docs/mapping-decisions.md, "R4 output", has one row per element with the reason for each choice; the tables
below are those rows in code. An element the tables do not know is an error (`R4ConversionError`), never
silently dropped.

The IG's profiles are R5 StructureDefinitions: they do not apply to R4 resources, so `meta.profile` is
dropped (no R4 profile of the IG exists).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

XVER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-"
"""Base of the R5-for-R4 cross-version extension URLs; the element path follows."""
ALTERNATE_REFERENCE = "http://hl7.org/fhir/StructureDefinition/alternate-reference"
"""FHIR extensions pack (hl7.fhir.uv.extensions.r4): a reference whose target type the R4 element does not allow
(a Basic standing for an R5-only resource), with `Reference.reference` left empty."""
BODY_SITE = "http://hl7.org/fhir/StructureDefinition/bodySite"
"""R4 core extension (context Element): a Reference(BodyStructure) to the site."""

R5_ONLY_TYPES = frozenset({"ImagingSelection"})
"""Resource types R4 lacks; each becomes a Basic of the same id."""


class R4ConversionError(ValueError):
    """An R5 element the conversion has no rule for: a defect of the tables, never of the input."""


@dataclass(frozen=True, slots=True)
class Ext:
    """An element written as a cross-version extension: `value` is the `value[x]` key of a simple one, `parts`
    the sub-extensions (child element → Ext) of a complex one."""

    value: str | None = None
    parts: Mapping[str, Ext] | None = None
    modifier: bool = False
    """A modifier element (R5 ImagingSelection.status): the extension goes in `modifierExtension`."""


ID = Ext("valueId")
CODE = Ext("valueCode")
STRING = Ext("valueString")
DECIMAL = Ext("valueDecimal")
UNSIGNED = Ext("valueUnsignedInt")
REFERENCE = Ext("valueReference")
CONCEPT = Ext("valueCodeableConcept")
CODING = Ext("valueCoding")
INSTANT = Ext("valueInstant")
_REGION = Ext(parts={"regionType": CODE, "coordinate": DECIMAL})

EXTENSIONS: Mapping[str, Mapping[str, Ext]] = {
    "ImagingSelection": {
        "status": Ext("valueCode", modifier=True),
        "issued": INSTANT,
        "performer": Ext(parts={"function": CONCEPT, "actor": REFERENCE}),
        "basedOn": REFERENCE,
        "category": CONCEPT,
        "studyUid": ID,
        "derivedFrom": REFERENCE,
        "endpoint": REFERENCE,
        "seriesUid": ID,
        "seriesNumber": UNSIGNED,
        "frameOfReferenceUid": ID,
        "focus": REFERENCE,
        "instance": Ext(
            parts={
                "uid": ID,
                "number": UNSIGNED,
                "sopClass": CODING,
                "subset": STRING,
                "imageRegion2D": _REGION,
                "imageRegion3D": _REGION,
            }
        ),
    },
    "Observation": {
        "bodyStructure": REFERENCE,
        "triggeredBy": Ext(parts={"observation": REFERENCE, "type": CODE, "reason": STRING}),
    },
    "Device": {
        "displayName": STRING,
        "name": Ext(parts={"value": STRING, "type": CODE, "display": Ext("valueBoolean")}),
        "type": CONCEPT,
        "property.value": STRING,
    },
}
"""Per resource type, the R5 elements written as cross-version extensions (value type as in xver-paths-5.0.json
of hl7.fhir.xver-extensions 0.1.0; tests/test_r4.py checks each against it). `Device.type` is the R5 types after
the first (R4 `type` is 0..1); `Device.property.value` a property value R4's valueQuantity/valueCode cannot hold
(a string), as an extension on that property."""

NATIVE: Mapping[str, frozenset[str]] = {
    "Patient": frozenset({"identifier", "name", "birthDate", "gender"}),
    "Practitioner": frozenset({"identifier", "name"}),
    "ServiceRequest": frozenset({"identifier", "status", "intent", "subject"}),
    "ImagingStudy": frozenset({"identifier", "status", "subject", "started", "basedOn", "description"}),
    "Observation": frozenset(
        {
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "category",
            "code",
            "subject",
            "focus",
            "effectiveDateTime",
            "issued",
            "performer",
            "valueQuantity",
            "valueCodeableConcept",
            "valueString",
            "dataAbsentReason",
            "interpretation",
            "note",
            "bodySite",
            "method",
            "device",
            "hasMember",
            "derivedFrom",
            "component",
        }
    ),
    "BodyStructure": frozenset({"identifier", "patient"}),
    "Device": frozenset(
        {"identifier", "udiCarrier", "manufacturer", "serialNumber", "modelNumber", "version", "parent", "location"}
    ),
}
"""Per resource type, the R5 elements whose R4 element has the same name, cardinality and type (checked against
the R4 StructureDefinitions); copied as they are, references in them rewritten (`ImagingSelection/` → `Basic/`)."""

REFERENCE_TARGETS: Mapping[tuple[str, str], frozenset[str]] = {
    ("Observation", "partOf"): frozenset(
        {
            "MedicationAdministration",
            "MedicationDispense",
            "MedicationStatement",
            "Procedure",
            "Immunization",
            "ImagingStudy",
        }
    ),
    ("Observation", "derivedFrom"): frozenset(
        {"DocumentReference", "ImagingStudy", "Media", "QuestionnaireResponse", "Observation", "MolecularSequence"}
    ),
    ("Observation", "hasMember"): frozenset({"Observation", "QuestionnaireResponse", "MolecularSequence"}),
}
"""The R4 target types of reference elements that R5 lets point at an ImagingSelection; a reference to another
type (the Basic standing for one) becomes an `alternate-reference`. `focus` takes any resource in R4."""

DEVICE_NAME_TYPES = frozenset({"user-friendly-name", "patient-reported-name"})
"""R5 Device.name types that R4 DeviceNameType has too; `registered-name` has no R4 code."""

_RENAMED_TYPES = {t: "Basic" for t in R5_ONLY_TYPES}


def to_r4(resources: list[dict]) -> list[dict]:
    """The R4 form of each resource, in the same order, with the same ids."""
    return [_CONVERTERS.get(r["resourceType"], _unknown)(r) for r in resources]


def _unknown(resource: dict) -> dict:
    raise R4ConversionError(f"no R4 rule for resource type {resource['resourceType']}")


def _reference(reference: dict) -> dict:
    target = reference.get("reference", "")
    resource_type, _, rest = target.partition("/")
    if resource_type in _RENAMED_TYPES:
        return {**reference, "reference": f"{_RENAMED_TYPES[resource_type]}/{rest}"}
    return reference


def _rewrite(value: object) -> object:
    """`value` with every Reference to an R5-only resource pointed at its Basic (unchanged parts are shared)."""
    if isinstance(value, list):
        return [_rewrite(v) for v in value]
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            return _reference(value)
        return {k: _rewrite(v) for k, v in value.items()}
    return value


def _extension(url: str, rule: Ext, value: object) -> dict:
    if rule.parts is None:
        assert rule.value is not None
        return {"url": url, rule.value: _rewrite(value)}
    if not isinstance(value, dict):
        raise R4ConversionError(f"{url}: expected a backbone element")
    parts = []
    for child, child_value in value.items():
        child_rule = rule.parts.get(child)
        if child_rule is None:
            raise R4ConversionError(f"{url}: no rule for {child}")
        for item in child_value if isinstance(child_value, list) else [child_value]:
            parts.append(_extension(child, child_rule, item))
    return {"url": url, "extension": parts}


def _extensions(resource_type: str, element: str, value: object) -> list[dict]:
    rule = EXTENSIONS[resource_type][element]
    url = f"{XVER}{resource_type}.{element}"
    return [_extension(url, rule, v) for v in (value if isinstance(value, list) else [value])]


def _check_meta(resource: dict) -> None:
    if set(resource.get("meta", {})) - {"profile"}:
        raise R4ConversionError(f"{resource['resourceType']}.meta: only profile is known")


def _generic(resource: dict, special: Mapping[str, Callable[[dict, object], None]] | None = None) -> dict:
    """Native elements copied, cross-version extensions appended, `special` elements handed to their function
    (which writes into the new resource)."""
    resource_type = resource["resourceType"]
    native = NATIVE[resource_type]
    extensions = EXTENSIONS.get(resource_type, {})
    _check_meta(resource)
    out: dict = {"resourceType": resource_type, "id": resource["id"]}
    added: list[dict] = []
    for element, value in resource.items():
        if element in ("resourceType", "id", "meta"):
            continue
        if special and element in special:
            special[element](out, value)
            added.extend(out.pop("extension", []))  # in element order with the others
        elif element in native:
            out[element] = _native(resource_type, element, value)
        elif element in extensions:
            added.extend(_extensions(resource_type, element, value))
        else:
            raise R4ConversionError(f"no R4 rule for {resource_type}.{element}")
    if added:
        out["extension"] = added
    return out


def _native(resource_type: str, element: str, value: object) -> object:
    rewritten = _rewrite(value)
    targets = REFERENCE_TARGETS.get((resource_type, element))
    if targets is None or not isinstance(rewritten, list):
        return rewritten
    return [
        r
        if r.get("reference", "").partition("/")[0] in targets
        else {"extension": [{"url": ALTERNATE_REFERENCE, "valueReference": r}]}
        for r in rewritten
    ]


def _body_structure(resource: dict) -> dict:
    """R5 includedStructure (1..*) → R4 `location` (0..1) and `locationQualifier` (laterality, then the
    topographical modifiers) of the first; each further one a contained BodyStructure of its own, named by the
    core `bodySite` extension."""

    def included(out: dict, structures: object) -> None:
        assert isinstance(structures, list)
        first, *more = structures
        out.update(_location(first))
        for number, structure in enumerate(more, start=2):
            contained_id = f"structure-{number}"
            out.setdefault("contained", []).append(
                {
                    "resourceType": "BodyStructure",
                    "id": contained_id,
                    **_location(structure),
                    "patient": resource["patient"],
                }
            )
            out.setdefault("extension", []).append(
                {"url": BODY_SITE, "valueReference": {"reference": f"#{contained_id}"}}
            )

    return _generic(resource, {"includedStructure": included})


def _location(structure: dict) -> dict:
    unknown = set(structure) - {"structure", "laterality", "qualifier"}
    if unknown:
        raise R4ConversionError(f"no R4 rule for BodyStructure.includedStructure.{sorted(unknown)[0]}")
    location: dict = {"location": structure["structure"]}
    qualifiers = [structure["laterality"]] if "laterality" in structure else []
    qualifiers += structure.get("qualifier", [])
    if qualifiers:
        location["locationQualifier"] = qualifiers
    return location


def _device(resource: dict) -> dict:
    def names(out: dict, value: object) -> None:
        assert isinstance(value, list)
        for name in value:
            if name.get("type") in DEVICE_NAME_TYPES and set(name) <= {"value", "type"}:
                out.setdefault("deviceName", []).append({"name": name["value"], "type": name["type"]})
            else:
                out.setdefault("extension", []).extend(_extensions("Device", "name", name))

    def types(out: dict, value: object) -> None:
        assert isinstance(value, list)
        first, *more = value
        out["type"] = first
        if more:
            out.setdefault("extension", []).extend(_extensions("Device", "type", more))

    def properties(out: dict, value: object) -> None:
        assert isinstance(value, list)
        out["property"] = [_property(p) for p in value]

    return _generic(resource, {"name": names, "type": types, "property": properties})


def _property(prop: dict) -> dict:
    """R5 property {type, value[x]} → R4 {type, valueQuantity[], valueCode[] (a CodeableConcept)}; other value
    types as the `Device.property.value` extension on the property."""
    out: dict = {"type": prop["type"]}
    for key, value in prop.items():
        if key == "type":
            continue
        if key == "valueQuantity":
            out["valueQuantity"] = [value]
        elif key == "valueCodeableConcept":
            out["valueCode"] = [value]
        elif key == "valueString":
            out["extension"] = [{"url": f"{XVER}Device.property.value", "valueString": value}]
        else:
            raise R4ConversionError(f"no R4 rule for Device.property.{key}")
    return out


def _imaging_selection(resource: dict) -> dict:
    """R5 ImagingSelection → R4 Basic of the same id: `subject` and `code` as Basic's own (the cross-version
    lookup's UseBasicElement), `status` a modifier extension, `bodySite` the core `bodySite` extension (a
    concept: a contained BodyStructure whose location it is), every other element its cross-version extension."""
    _check_meta(resource)
    out: dict = {"resourceType": "Basic", "id": resource["id"]}
    modifiers: list[dict] = []
    extensions: list[dict] = []
    contained: list[dict] = []
    rules = EXTENSIONS["ImagingSelection"]
    for element, value in resource.items():
        if element in ("resourceType", "id", "meta", "subject", "code", "identifier"):
            continue
        if element == "bodySite":
            extensions.append(_selection_body_site(value, resource, contained))
        elif element in rules:
            (modifiers if rules[element].modifier else extensions).extend(
                _extensions("ImagingSelection", element, value)
            )
        else:
            raise R4ConversionError(f"no R4 rule for ImagingSelection.{element}")
    if contained:
        out["contained"] = contained
    if modifiers:
        out["modifierExtension"] = modifiers
    if extensions:
        out["extension"] = extensions
    if "identifier" in resource:
        out["identifier"] = resource["identifier"]
    out["code"] = resource["code"]
    if "subject" in resource:
        out["subject"] = _rewrite(resource["subject"])
    return out


def _selection_body_site(site: dict, selection: dict, contained: list[dict]) -> dict:
    if "reference" in site:
        return {"url": BODY_SITE, "valueReference": site["reference"]}
    if "subject" not in selection:
        raise R4ConversionError("ImagingSelection.bodySite concept without a subject for its BodyStructure")
    contained.append(
        {
            "resourceType": "BodyStructure",
            "id": "body-site",
            "location": site["concept"],
            "patient": selection["subject"],
        }
    )
    return {"url": BODY_SITE, "valueReference": {"reference": "#body-site"}}


_CONVERTERS: Mapping[str, Callable[[dict], dict]] = {
    "Patient": _generic,
    "Practitioner": _generic,
    "ServiceRequest": _generic,
    "ImagingStudy": _generic,
    "Observation": _generic,
    "BodyStructure": _body_structure,
    "Device": _device,
    "ImagingSelection": _imaging_selection,
}
