"""Coded concepts TID 1500 and the IG name, and the Coding Scheme Designator → FHIR system table.

Concepts are compared by (scheme, value) after `canonical`, which replaces legacy SNOMED-RT identifiers
(SRT, e.g. "G-C0E3") with their SNOMED CT concept ids: producers from before 2019 (Iowa2DICOM, PixelMed,
dcmjs, older dcmqi) write the same concepts in the old form, and both must match the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from .content import Code
from .document import CodingSchemeIdentification

# --- Coding schemes -----------------------------------------------------------------------------------

SNOMED_CT = "http://snomed.info/sct"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"
UMLS = "http://terminology.hl7.org/CodeSystem/umls"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DICOM_UID = "urn:dicom:uid"
IG_IDENTIFIER_TYPE = "http://hl7.org/fhir/uv/dicom-sr/CodeSystem/dicom-identifier-type"

CODE_SYSTEMS: dict[str, str] = {
    "DCM": DICOM_DCM,
    "SCT": SNOMED_CT,
    "UCUM": UCUM,
    "LN": "http://loinc.org",
    "RADLEX": "http://radlex.org",
    "NCIT": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
    "UMLS": UMLS,
    "FMA": "http://purl.org/sig/ont/fma",
    "RFC5646": "urn:ietf:bcp:47",
    "RFC3066": "urn:ietf:bcp:47",
    "ISO3166_1": "urn:iso:std:iso:3166",
    "ISO639_2": "urn:ietf:bcp:47",
    "MDC": "urn:iso:std:iso:11073:10101",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "C4": "http://www.ama-assn.org/go/cpt",
    "NEU": "http://neuinfo.org/nif/nifstd",
    "UBERON": "http://purl.obolibrary.org/obo/uberon.owl",
    "HGNC": "http://www.genenames.org",
    "NCBITAXON": "http://purl.obolibrary.org/obo/ncbitaxon.owl",
    # No HL7 Terminology URI; DICOM registers the scheme's UID (PS3.16 Table 8-1), so a report that does not
    # declare it gets the system of one that does.
    "IBSI": "urn:oid:1.2.840.10008.2.16.13",
}
"""Designator (upper-cased) → FHIR `Coding.system`: the IG's choices, else HL7 Terminology preferred URIs.
Never a version in the URI: the scheme version goes to `Coding.version`."""

LEGACY_SNOMED_DESIGNATORS = frozenset({"SRT", "SNM3", "99SDM"})
"""SNOMED-RT style identifiers ("T-28000"); converted to SNOMED CT concept ids where a mapping exists."""

UNREGISTERED_SYSTEM_PREFIX = "urn:dicom:coding-scheme:"
"""Fallback for private (99*, L) and unknown designators that the SR does not identify itself: an invented
URN, documented in docs/mapping-decisions.md, stable so that queries over it keep working."""


LegacySnomedTable = Callable[[], Mapping[str, str]]
_legacy_snomed_table: LegacySnomedTable | None = None


def use_legacy_snomed_table(table: LegacySnomedTable) -> None:
    """Where SNOMED-RT → SNOMED CT ids come from: DICOM's table (PS3.16 Annex O), which pydicom ships. Only the
    reading layer may use pydicom, so `sr2fhir_core.mapping` hands its accessor over here when imported."""
    global _legacy_snomed_table
    _legacy_snomed_table = table
    _snomed_rt_to_ct.cache_clear()
    _CONCEPT_KEYS.clear()


@lru_cache(maxsize=1)
def _snomed_rt_to_ct() -> Mapping[str, str]:
    return _legacy_snomed_table() if _legacy_snomed_table is not None else {}


SNOMED_RT_SUPPLEMENT: dict[str, str] = {
    "F-61FDB": "349358000",  # Radiopharmaceutical agent (TID 3470; Iowa2DICOM PET reports)
    "T-53131": "47975008",  # Base of tongue (CID 4 anatomic regions; QIN-HEADNECK)
}
"""SNOMED-RT ids seen in real TID 1500 reports that pydicom's table lacks."""


def canonical(code: Code) -> Code:
    """The code as it should be compared and emitted: legacy SNOMED-RT → SNOMED CT when mapped."""
    if code.scheme.upper() in LEGACY_SNOMED_DESIGNATORS:
        sct = _snomed_rt_to_ct().get(code.value) or SNOMED_RT_SUPPLEMENT.get(code.value)
        if sct is not None:
            return Code(value=sct, scheme="SCT", meaning=code.meaning)
    return code


_CONCEPT_KEYS: dict[tuple[str, str], tuple[str, str]] = {}
_CONCEPT_KEYS_LIMIT = 100_000


def concept_key(code: Code | None) -> tuple[str, str] | None:
    """`canonical(code).key`, memoised: template rules look up every content item's concept by it."""
    if code is None:
        return None
    raw = (code.scheme, code.value)
    key = _CONCEPT_KEYS.get(raw)
    if key is None:
        key = canonical(code).key
        if len(_CONCEPT_KEYS) < _CONCEPT_KEYS_LIMIT:
            _CONCEPT_KEYS[raw] = key
    return key


def same_concept(code: Code | None, concept: Code) -> bool:
    return concept_key(code) == concept.key


def system_for(designator: str, scheme_urls: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """FHIR system for a Coding Scheme Designator, and whether it is a registered one (not the fallback).

    `scheme_urls` holds what the SR declares itself in its Coding Scheme Identification Sequence
    (designator → URL or `urn:oid:` UID) and any configured overrides; they win over the built-in table.
    """
    if scheme_urls and designator in scheme_urls:
        return scheme_urls[designator], True
    system = CODE_SYSTEMS.get(designator.upper())
    if system is not None:
        return system, True
    return UNREGISTERED_SYSTEM_PREFIX + designator, False


class CodeSystems:
    """Designator → FHIR system for one document: its Coding Scheme Identification Sequence (0008,0110)
    and configured overrides first, then the built-in table; remembers which designators fell back."""

    def __init__(self, declared: Iterable[CodingSchemeIdentification], overrides: Mapping[str, str]) -> None:
        urls: dict[str, str] = {}
        for scheme in declared:
            if scheme.url:
                urls[scheme.designator] = scheme.url
            elif scheme.uid:
                urls[scheme.designator] = f"urn:oid:{scheme.uid}"
        urls.update(overrides)
        self._urls = urls
        self._cache: dict[str, str] = {}
        self.unregistered: set[str] = set()

    def system(self, designator: str) -> str:
        system = self._cache.get(designator)
        if system is None:
            system, registered = system_for(designator, self._urls)
            if not registered:
                self.unregistered.add(designator)
            self._cache[designator] = system
        return system


# --- Concepts (PS3.16 and the IG) -----------------------------------------------------------------------


def _dcm(value: str, meaning: str) -> Code:
    return Code(value=value, scheme="DCM", meaning=meaning)


def _sct(value: str, meaning: str) -> Code:
    return Code(value=value, scheme="SCT", meaning=meaning)


IMAGING_MEASUREMENT_REPORT = _dcm("126000", "Imaging Measurement Report")
IMAGING_MEASUREMENTS = _dcm("126010", "Imaging Measurements")
DERIVED_IMAGING_MEASUREMENTS = _dcm("126011", "Derived Imaging Measurements")
QUALITATIVE_EVALUATIONS = Code(value="C0034375", scheme="UMLS", meaning="Qualitative Evaluations")
MEASUREMENT_GROUP = _dcm("125007", "Measurement Group")
IMAGE_LIBRARY = _dcm("111028", "Image Library")
LANGUAGE = _dcm("121049", "Language of Content Item and Descendants")
PROCEDURE_REPORTED = _dcm("121058", "Procedure reported")

OBSERVER_TYPE = _dcm("121005", "Observer Type")
OBSERVER_PERSON = _dcm("121006", "Person")
OBSERVER_DEVICE = _dcm("121007", "Device")
PERSON_OBSERVER_NAME = _dcm("121008", "Person Observer Name")
PERSON_OBSERVER_ORGANIZATION = _dcm("121009", "Person Observer's Organization Name")
PERSON_OBSERVER_ROLE_IN_ORGANIZATION = _dcm("121010", "Person Observer's Role in the Organization")
DEVICE_OBSERVER_UID = _dcm("121012", "Device Observer UID")
DEVICE_OBSERVER_NAME = _dcm("121013", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER = _dcm("121014", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL_NAME = _dcm("121015", "Device Observer Model Name")
DEVICE_OBSERVER_SERIAL_NUMBER = _dcm("121016", "Device Observer Serial Number")
DEVICE_OBSERVER_PHYSICAL_LOCATION = _dcm("121017", "Device Observer Physical Location During Observation")

TRACKING_IDENTIFIER = _dcm("112039", "Tracking Identifier")
TRACKING_UID = _dcm("112040", "Tracking Unique Identifier")
FINDING = _dcm("121071", "Finding")
FINDING_CATEGORY = _sct("276214006", "Finding category")
FINDING_SITE = _sct("363698007", "Finding Site")
LATERALITY = _sct("272741003", "Laterality")
TOPOGRAPHICAL_MODIFIER = _sct("106233006", "Topographical modifier")
MEASUREMENT_METHOD = _sct("370129005", "Measurement Method")
DERIVATION = _dcm("121401", "Derivation")
ACTIVITY_SESSION = Code(value="C67447", scheme="NCIt", meaning="Activity Session")
GEOMETRIC_PURPOSE_OF_REGION = _dcm("130400", "Geometric purpose of region")
TIME_POINT = Code(value="C2348792", scheme="UMLS", meaning="Time Point")
TIME_POINT_CONCEPTS = (
    TIME_POINT,
    _dcm("126072", "Time Point Type"),
    _dcm("126073", "Time Point Order"),
    _dcm("126070", "Subject Time Point Identifier"),
    _dcm("126071", "Protocol Time Point Identifier"),
    _dcm("128740", "Longitudinal Temporal Offset from Event"),
    _dcm("128741", "Longitudinal Temporal Event Type"),
)
"""TID 1502 Time Point Context."""

ALGORITHM_NAME = _dcm("111001", "Algorithm Name")
ALGORITHM_VERSION = _dcm("111003", "Algorithm Version")
ALGORITHM_PARAMETERS = _dcm("111002", "Algorithm Parameters")
ALGORITHM_FAMILY = _dcm("111000", "Algorithm Family")
ALGORITHM_MANUFACTURER = _dcm("122405", "Algorithm Manufacturer")
ALGORITHM_CONCEPTS = (ALGORITHM_NAME, ALGORITHM_VERSION, ALGORITHM_PARAMETERS, ALGORITHM_FAMILY, ALGORITHM_MANUFACTURER)

IMAGE_REGION = _dcm("111030", "Image Region")
REFERENCED_SEGMENT = _dcm("121191", "Referenced Segment")
REFERENCED_SEGMENTATION_FRAME = _dcm("121214", "Referenced Segmentation Frame")
REGION_IN_SPACE = _dcm("130488", "Region In Space")
REGION_IN_SPACE_ROI_NUMBER = _dcm("130489", "Referenced Region of Interest Identifier")
VOLUME_SURFACE = _dcm("121231", "Volume Surface")
REAL_WORLD_VALUE_MAP = _dcm("126100", "Real World Value Map used for measurement")
ILLUSTRATION_OF_ROI = _dcm("121200", "Illustration of ROI")
VISUAL_EXPLANATION = _dcm("130401", "Visual Explanation")
SOURCE_SERIES_FOR_SEGMENTATION = _dcm("121232", "Source series for segmentation")
SOURCE_IMAGE_FOR_SEGMENTATION = _dcm("121233", "Source image for segmentation")

NOT_QUALITATIVE_EVALUATIONS = (
    TRACKING_IDENTIFIER,
    FINDING,
    GEOMETRIC_PURPOSE_OF_REGION,
    ACTIVITY_SESSION,
    FINDING_CATEGORY,
    FINDING_SITE,
    MEASUREMENT_METHOD,
    *ALGORITHM_CONCEPTS,
    DERIVATION,
    *TIME_POINT_CONCEPTS,
)
"""The IG's exclusion list (NOTES §5.4) plus TID 4019, Derivation and TID 1502: CODE/TEXT children of a
group with these concept names are context, not qualitative evaluations."""
NOT_QUALITATIVE_EVALUATION_KEYS = frozenset(c.key for c in NOT_QUALITATIVE_EVALUATIONS)

NUMERIC_VALUE_QUALIFIER_ABSENT_REASON: dict[str, str] = {
    "114000": "not-a-number",
    "114001": "negative-infinity",
    "114002": "positive-infinity",
    "114003": "error",
    "114004": "error",
    "114005": "error",
    "114006": "error",
    "114007": "not-performed",
    "114008": "error",
    "114009": "error",
    "114010": "unknown",
    "114011": "error",
}
"""CID 42 Numeric Value Qualifier (DCM) → FHIR data-absent-reason: NaN and infinities have their own
codes; divide by zero, under/overflow, measurement and calculation failure are errors; not attempted is
not-performed. Used only when the qualifier stands in for a missing value."""
