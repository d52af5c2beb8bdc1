"""Coded concepts and value tables the generator draws from (PS3.16 templates and context groups).

Every SNOMED CT code is given with its Code Meaning as DICOM writes it; `SNOMED_RT` holds the legacy
SNOMED-RT identifier of those that have one (PS3.16 Annex O), so that the writer can encode a report the
way pre-2019 producers did. `tests/test_synth_generator.py` checks these tables against pydicom's copy of
the DICOM dictionaries, so a typo here cannot silently become the tests' truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from .spec import Code, CodingScheme, ReferenceKind


def _dcm(value: str, meaning: str) -> Code:
    return Code(value, "DCM", meaning)


def _sct(value: str, meaning: str) -> Code:
    return Code(value, "SCT", meaning)


def _ucum(value: str, meaning: str) -> Code:
    return Code(value, "UCUM", meaning)


# --- Template structure (TID 1500 and the templates it includes) -----------------------------------------

IMAGING_MEASUREMENT_REPORT = _dcm("126000", "Imaging Measurement Report")
IMAGING_MEASUREMENTS = _dcm("126010", "Imaging Measurements")
DERIVED_IMAGING_MEASUREMENTS = _dcm("126011", "Derived Imaging Measurements")
QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")
MEASUREMENT_GROUP = _dcm("125007", "Measurement Group")
LANGUAGE_OF_CONTENT = _dcm("121049", "Language of Content Item and Descendants")
PROCEDURE_REPORTED = _dcm("121058", "Procedure reported")
IMAGE_LIBRARY = _dcm("111028", "Image Library")
IMAGE_LIBRARY_GROUP = _dcm("126200", "Image Library Group")

OBSERVER_TYPE = _dcm("121005", "Observer Type")
OBSERVER_PERSON = _dcm("121006", "Person")
OBSERVER_DEVICE = _dcm("121007", "Device")
PERSON_OBSERVER_NAME = _dcm("121008", "Person Observer Name")
PERSON_OBSERVER_ORGANIZATION = _dcm("121009", "Person Observer's Organization Name")
DEVICE_OBSERVER_UID = _dcm("121012", "Device Observer UID")
DEVICE_OBSERVER_NAME = _dcm("121013", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER = _dcm("121014", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL_NAME = _dcm("121015", "Device Observer Model Name")
DEVICE_OBSERVER_SERIAL_NUMBER = _dcm("121016", "Device Observer Serial Number")
DEVICE_OBSERVER_PHYSICAL_LOCATION = _dcm("121017", "Device Observer Physical Location During Observation")
DEVICE_ROLE_IN_PROCEDURE = _dcm("113876", "Device Role in Procedure")
STATION_AE_TITLE = _dcm("110119", "Station AE Title")
DEVICE_OBSERVER_MANUFACTURER_CLASS_UID = _dcm("121061", "Device Observer Manufacturer Class UID")
UNIQUE_DEVICE_IDENTIFIERS = _dcm("121000", "Unique Device Identifiers")
UNIQUE_DEVICE_IDENTIFIER = Code("74711-3", "LN", "Unique Device Identifier")
DEVICE_DESCRIPTION = _dcm("120999", "Device Description")
"""TID 1004 rows (PS3.16), in table order."""
PERSON_OBSERVER_LOGIN_NAME = _dcm("128774", "Person Observer's Login Name")
PERSON_OBSERVER_ROLE_IN_ORGANIZATION = _dcm("121010", "Person Observer's Role in the Organization")
PERSON_OBSERVER_ROLE_IN_PROCEDURE = _dcm("121011", "Person Observer's Role in this Procedure")
IDENTIFIER_WITHIN_PERSON_OBSERVER_ROLE = _dcm("128775", "Identifier within Person Observer's Role")
COUNTRY_OF_LANGUAGE = _dcm("121046", "Country of Language")

TRACKING_IDENTIFIER = _dcm("112039", "Tracking Identifier")
TRACKING_UID = _dcm("112040", "Tracking Unique Identifier")
ACTIVITY_SESSION = Code("C67447", "NCIt", "Activity Session")
TIME_POINT = Code("C2348792", "UMLS", "Time Point")
SUBJECT_TIME_POINT_IDENTIFIER = _dcm("126070", "Subject Time Point Identifier")
PROTOCOL_TIME_POINT_IDENTIFIER = _dcm("126071", "Protocol Time Point Identifier")
TIME_POINT_TYPE = _dcm("126072", "Time Point Type")
TIME_POINT_ORDER = _dcm("126073", "Time Point Order")
TEMPORAL_OFFSET_FROM_EVENT = _dcm("128740", "Longitudinal Temporal Offset from Event")
TEMPORAL_EVENT_TYPE = _dcm("128741", "Longitudinal Temporal Event Type")
GEOMETRIC_PURPOSE = _dcm("130400", "Geometric purpose of region")
SOURCE_IMAGE_FOR_SEGMENTATION = _dcm("121233", "Source image for segmentation")
EQUIVALENT_MEANING = _dcm("121050", "Equivalent Meaning of Concept Name")
REFERENCE_POINTS = _dcm("122438", "Reference Points")
FINDING_CATEGORY = _sct("276214006", "Finding category")
FINDING = _dcm("121071", "Finding")
FINDING_SITE = _sct("363698007", "Finding Site")
LATERALITY = _sct("272741003", "Laterality")
TOPOGRAPHICAL_MODIFIER = _sct("106233006", "Topographical modifier")
MEASUREMENT_METHOD = _sct("370129005", "Measurement Method")
DERIVATION = _dcm("121401", "Derivation")
SOURCE_SERIES_FOR_SEGMENTATION = _dcm("121232", "Source series for segmentation")
REFERENCED_ROI_IDENTIFIER = _dcm("130489", "Referenced Region of Interest Identifier")

ALGORITHM_NAME = _dcm("111001", "Algorithm Name")
ALGORITHM_VERSION = _dcm("111003", "Algorithm Version")
ALGORITHM_PARAMETERS = _dcm("111002", "Algorithm Parameters")
ALGORITHM_MANUFACTURER = _dcm("122405", "Algorithm Manufacturer")
ALGORITHM_FAMILY = _dcm("111000", "Algorithm Family")

REFERENCE_ITEMS: MappingProxyType[ReferenceKind, tuple[str, Code]] = MappingProxyType(
    {
        ReferenceKind.IMAGE_REGION_2D: ("SCOORD", _dcm("111030", "Image Region")),
        ReferenceKind.IMAGE_REGION_3D: ("SCOORD3D", _dcm("111030", "Image Region")),
        ReferenceKind.VOLUME_SURFACE: ("SCOORD3D", _dcm("121231", "Volume Surface")),
        ReferenceKind.REFERENCED_SEGMENT: ("IMAGE", _dcm("121191", "Referenced Segment")),
        ReferenceKind.REFERENCED_SEGMENTATION_FRAME: (
            "IMAGE",
            _dcm("121214", "Referenced Segmentation Frame"),
        ),
        ReferenceKind.ILLUSTRATION_OF_ROI: ("IMAGE", _dcm("121200", "Illustration of ROI")),
        ReferenceKind.VISUAL_EXPLANATION: ("IMAGE", _dcm("130401", "Visual Explanation")),
        ReferenceKind.REGION_IN_SPACE: ("COMPOSITE", _dcm("130488", "Region In Space")),
        ReferenceKind.REAL_WORLD_VALUE_MAP: (
            "COMPOSITE",
            _dcm("126100", "Real World Value Map used for measurement"),
        ),
        ReferenceKind.SOURCE_OF_MEASUREMENT: ("IMAGE", _dcm("121112", "Source of Measurement")),
    }
)
"""Reference kind → Value Type and concept name of its content item (TID 1410, 1411, 320)."""

GRAPHIC_TYPES_2D = ("POINT", "MULTIPOINT", "POLYLINE", "CIRCLE", "ELLIPSE")
GRAPHIC_TYPES_3D = ("POINT", "MULTIPOINT", "POLYLINE", "POLYGON", "ELLIPSE", "ELLIPSOID")

# --- SOP classes of referenced objects (PS3.4 Table B.5-1) ------------------------------------------------

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
PET_IMAGE = "1.2.840.10008.5.1.4.1.1.128"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
REAL_WORLD_VALUE_MAPPING = "1.2.840.10008.5.1.4.1.1.67"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_TRUE_COLOR_SC = "1.2.840.10008.5.1.4.1.1.7.4"
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

SOURCE_IMAGE_CLASSES = (CT_IMAGE, MR_IMAGE, PET_IMAGE, ENHANCED_CT_IMAGE)
MULTIFRAME_IMAGE_CLASSES = frozenset({ENHANCED_CT_IMAGE})

# --- Measurement values -----------------------------------------------------------------------------------

MM = _ucum("mm", "millimeter")
CM = _ucum("cm", "centimeter")
MM2 = _ucum("mm2", "square millimeter")
MM3 = _ucum("mm3", "cubic millimeter")
CM3 = _ucum("cm3", "cubic centimeter")
HU = _ucum("[hnsf'U]", "Hounsfield unit")
SUV_BW = _ucum("{SUVbw}g/ml", "Standardized Uptake Value body weight")
GRAM = _ucum("g", "gram")
NO_UNITS = _ucum("1", "no units")
DAYS = _ucum("d", "day")

UNIT_MISSPELLINGS: MappingProxyType[str, str] = MappingProxyType({"[hnsf'U]": "hnsf'U"})
"""Canonical UCUM code → the misspelling DICOM-era producers wrote under UCUM (PS3.16 once listed
Hounsfield unit as hnsf'U, without the brackets UCUM requires)."""


@dataclass(frozen=True, slots=True)
class MeasurementKind:
    """A NUM concept with the units it is reported in and a plausible value range."""

    concept: Code
    units: tuple[Code, ...]
    low: float
    high: float


MEASUREMENT_KINDS: tuple[MeasurementKind, ...] = (
    MeasurementKind(_sct("118565006", "Volume"), (MM3, CM3), 0.5, 250000.0),
    MeasurementKind(_sct("81827009", "Diameter"), (MM, CM), 1.0, 180.0),
    MeasurementKind(_sct("410668003", "Length"), (MM, CM), 0.5, 300.0),
    MeasurementKind(_sct("103339001", "Long Axis"), (MM,), 1.0, 150.0),
    MeasurementKind(_sct("103340004", "Short Axis"), (MM,), 1.0, 100.0),
    MeasurementKind(_sct("42798000", "Area"), (MM2,), 1.0, 20000.0),
    MeasurementKind(_dcm("112031", "Attenuation Coefficient"), (HU,), -1000.0, 1500.0),
    MeasurementKind(_dcm("126401", "SUVbw"), (SUV_BW,), 0.1, 40.0),
    MeasurementKind(_dcm("126031", "Peak Value Within ROI"), (SUV_BW, HU), 0.1, 40.0),
    MeasurementKind(_dcm("126032", "Metabolic Volume"), (CM3,), 0.1, 900.0),
    MeasurementKind(_dcm("126033", "Total Lesion Glycolysis"), (GRAM,), 0.1, 5000.0),
    MeasurementKind(_dcm("126039", "Lesion to Background SUV Ratio"), (NO_UNITS,), 0.5, 20.0),
)

DERIVED_MEASUREMENT_KINDS: tuple[MeasurementKind, ...] = (
    MeasurementKind(_sct("118565006", "Volume"), (MM3, CM3), 10.0, 900000.0),
    MeasurementKind(_dcm("126033", "Total Lesion Glycolysis"), (GRAM,), 1.0, 20000.0),
    MeasurementKind(_dcm("126032", "Metabolic Volume"), (CM3,), 1.0, 2000.0),
    MeasurementKind(_dcm("126031", "Peak Value Within ROI"), (SUV_BW,), 0.5, 60.0),
)

DERIVATIONS: tuple[Code, ...] = (
    _sct("373098007", "Mean"),
    _sct("373099004", "Median"),
    _sct("56851009", "Maximum"),
    _sct("255605001", "Minimum"),
    _sct("386136009", "Standard Deviation"),
)

NUMERIC_VALUE_QUALIFIERS: tuple[Code, ...] = (
    _dcm("114000", "Not a number"),
    _dcm("114001", "Negative Infinity"),
    _dcm("114006", "Measurement failure"),
    _dcm("114007", "Measurement not attempted"),
)
"""CID 42; a qualifier stands in for the value, so these NUMs have an empty Measured Value Sequence."""

MEASUREMENT_METHODS: tuple[Code, ...] = (
    _dcm("126080", "RECIST 1.0"),
    _dcm("126081", "RECIST 1.1"),
    _sct("258083009", "Visual estimation"),
)

# --- Findings and sites -----------------------------------------------------------------------------------

FINDING_CATEGORIES: tuple[Code, ...] = (
    _sct("49755003", "Morphologically Abnormal Structure"),
    _sct("91723000", "Anatomical Structure"),
    _sct("85756007", "Tissue"),
)
FINDINGS: tuple[Code, ...] = (
    _sct("108369006", "Neoplasm"),
    _sct("27925004", "Nodule"),
    _sct("52988006", "Lesion"),
    _sct("4147007", "Mass"),
    _sct("79654002", "Edema"),
)
FINDING_SITES: tuple[Code, ...] = (
    _sct("39607008", "Lung"),
    _sct("10200004", "Liver"),
    _sct("12738006", "Brain"),
    _sct("41216001", "Prostate"),
    _sct("71854001", "Colon"),
    _sct("78904004", "Chest wall"),
    _sct("45048000", "Neck"),
    _sct("15825003", "Aorta"),
)
RIGHT = _sct("24028007", "Right")
LEFT = _sct("7771000", "Left")
LATERALITIES: tuple[Code, ...] = (RIGHT, LEFT, _sct("51440002", "Right and left"))
TOPOGRAPHICAL_MODIFIERS: tuple[Code, ...] = (
    _sct("255561001", "Medial"),
    _sct("49370004", "Lateral"),
    _sct("255549009", "Anterior"),
    _sct("255551008", "Posterior"),
)

IMAGE_PURPOSES: tuple[Code, ...] = (
    _dcm("121112", "Source of Measurement"),
    _dcm("121226", "Approximate spatial location"),
    _dcm("121225", "Vector"),
    _dcm("121223", "Arm of angle"),
)
"""CID 7551, the $ImagePurpose of TID 320 and TID 1501 image and coordinate rows."""
GEOMETRIC_PURPOSES: tuple[Code, ...] = (
    _dcm("111041", "Outline"),
    _dcm("111010", "Center"),
    _dcm("128139", "Seed point"),
)
"""CID 219 (a subset)."""
ALGORITHM_FAMILIES: tuple[Code, ...] = (
    _dcm("123110", "Artificial Intelligence"),
    _dcm("123109", "Manual Processing"),
    _dcm("123105", "Histogram Analysis"),
)
"""CID 7162 (a subset)."""
MEASUREMENT_MODIFIERS: tuple[tuple[Code, Code], ...] = (
    (_sct("272741003", "Laterality"), _sct("66459002", "Unilateral")),
    (_sct("106233006", "Topographical modifier"), _sct("26216008", "Central")),
    (_sct("106233006", "Topographical modifier"), _sct("264217000", "Superior")),
)
"""$ModType = $ModValue and $QualModType = $QualModValue pairs (CID 210 / CID 211)."""
DERIVATION_PARAMETER_CODES: tuple[Code, ...] = (
    _dcm("111041", "Outline"),
    _sct("258083009", "Visual estimation"),
)
EQUATION = _dcm("121420", "Equation")

# --- Qualitative evaluations ------------------------------------------------------------------------------

SYNTHETIC_SCORES = CodingScheme(
    designator="99SYNTH",
    name="sr2fhir synthetic scores",
    url="http://example.org/sr2fhir/CodeSystem/synthetic-scores",
)
"""A private scheme identified by URL in the SR's Coding Scheme Identification Sequence."""
SYNTHETIC_GRADES = CodingScheme(
    designator="99SYNGRADE",
    name="sr2fhir synthetic grades",
    uid="2.25.198372049857328460815634826592310274117",
)
"""A private scheme identified only by an OID: its FHIR system is urn:oid:<uid>."""
SYNTHETIC_ALGORITHMS = CodingScheme(
    designator="99SYNALG",
    name="sr2fhir synthetic algorithms",
    url="http://example.org/sr2fhir/CodeSystem/synthetic-algorithms",
)
"""The scheme of coded Algorithm Names (TID 4019 row 1b) in `every_row_spec`."""


def _scores(scheme: CodingScheme, what: str) -> tuple[Code, ...]:
    return tuple(Code(str(n), scheme.designator, f"{n} out of 5 ({what})") for n in range(1, 6))


CODE_EVALUATIONS: tuple[tuple[Code, tuple[Code, ...]], ...] = (
    (Code("C45992", "NCIt", "Subtlety score"), _scores(SYNTHETIC_SCORES, "subtlety")),
    (Code("RID36042", "RADLEX", "Malignancy"), _scores(SYNTHETIC_SCORES, "malignancy")),
    (
        _sct("246112005", "Severity"),
        (_sct("255604002", "Mild"), _sct("6736007", "Moderate"), _sct("24484000", "Severe")),
    ),
    (_dcm("112001", "Opacity"), _scores(SYNTHETIC_GRADES, "opacity")),
)
"""CODE qualitative evaluations: concept name → the values it may take."""

TEXT_EVALUATIONS: tuple[Code, ...] = (_dcm("121106", "Comment"), _dcm("121073", "Impression"))

# --- Report context ---------------------------------------------------------------------------------------

LANGUAGES: tuple[Code, ...] = (
    Code("en-US", "RFC5646", "English (United States)"),
    Code("de", "RFC5646", "German"),
    Code("ja", "RFC5646", "Japanese"),
)
PROCEDURES: tuple[Code, ...] = (
    _sct("77477000", "Computed Tomography"),
    _sct("363679005", "Imaging procedure"),
)
COUNTRIES: tuple[Code, ...] = (
    Code("US", "ISO3166_1", "United States"),
    Code("DE", "ISO3166_1", "Germany"),
    Code("JP", "ISO3166_1", "Japan"),
)
"""CID 5001 (a subset)."""

# --- Observer and time point context --------------------------------------------------------------------

ORGANIZATION_ROLES: tuple[Code, ...] = (
    _sct("309343006", "Physician"),
    _sct("159016003", "Radiologic Technologist"),
    _dcm("121088", "Fellow"),
)
"""CID 7452 (a subset)."""
PROCEDURE_ROLES: tuple[Code, ...] = (
    Code("C28747", "NCIt", "Reader"),
    Code("C54634", "NCIt", "Reviewer"),
    _dcm("121094", "Performing"),
)
"""CID 7453 (a subset)."""
DEVICE_ROLES: tuple[Code, ...] = (
    _dcm("121097", "Recording"),
    _dcm("113942", "X-Ray Reading Device"),
    _dcm("113859", "Irradiating Device"),
)
"""CID 7445."""
TIME_POINT_TYPES: tuple[Code, ...] = (
    Code("C1442488", "UMLS", "Baseline"),
    _dcm("126074", "Posttreatment"),
    _sct("262061000", "Post-operative"),
)
"""CID 6146 (a subset)."""
TEMPORAL_EVENT_TYPES: tuple[Code, ...] = (
    _dcm("121079", "Baseline"),
    Code("C37948", "NCIt", "Enrollment"),
)
"""CID 280."""

SNOMED_RT: MappingProxyType[str, str] = MappingProxyType(
    {
        "363698007": "G-C0E3",  # Finding Site
        "370129005": "G-C036",  # Measurement Method
        "272741003": "G-C171",  # Laterality
        "106233006": "G-A1F8",  # Topographical modifier
        "276214006": "R-427CE",  # Finding category
        "118565006": "G-D705",  # Volume
        "81827009": "M-02550",  # Diameter
        "410668003": "G-D7FE",  # Length
        "103339001": "G-A185",  # Long Axis
        "103340004": "G-A186",  # Short Axis
        "42798000": "G-A166",  # Area
        "373098007": "R-00317",  # Mean
        "373099004": "R-00319",  # Median
        "56851009": "G-A437",  # Maximum
        "255605001": "R-404FB",  # Minimum
        "386136009": "R-10047",  # Standard Deviation
        "258083009": "R-41D27",  # Visual estimation
        "49755003": "M-01000",  # Morphologically Abnormal Structure
        "91723000": "T-D0005",  # Anatomical Structure
        "85756007": "T-D0050",  # Tissue
        "108369006": "M-8FFFF",  # Neoplasm
        "27925004": "M-03010",  # Nodule
        "52988006": "M-01100",  # Lesion
        "4147007": "M-03000",  # Mass
        "79654002": "M-36300",  # Edema
        "39607008": "T-28000",  # Lung
        "10200004": "T-62000",  # Liver
        "12738006": "T-A0100",  # Brain
        "41216001": "T-92000",  # Prostate
        "71854001": "T-59300",  # Colon
        "78904004": "T-D3050",  # Chest wall
        "45048000": "T-D1600",  # Neck
        "15825003": "T-42000",  # Aorta
        "24028007": "G-A100",  # Right
        "7771000": "G-A101",  # Left
        "51440002": "G-A102",  # Right and left
        "255561001": "R-404D5",  # Medial
        "49370004": "G-A104",  # Lateral
        "255549009": "R-404CC",  # Anterior
        "255551008": "R-404CE",  # Posterior
        "246112005": "G-C197",  # Severity
        "255604002": "R-404FA",  # Mild
        "6736007": "G-A002",  # Moderate
        "24484000": "G-A003",  # Severe
        "77477000": "P5-08000",  # Computed Tomography
        "363679005": "P0-0099A",  # Imaging procedure
        "309343006": "J-004E8",  # Physician
        "159016003": "J-00187",  # Radiologic Technologist
        "66459002": "G-A103",  # Unilateral
        "26216008": "G-A110",  # Central
        "264217000": "R-42191",  # Superior
        "262061000": "R-413B7",  # Post-operative
    }
)
"""SNOMED CT concept id → its legacy SNOMED-RT identifier (scheme SRT)."""

# --- Free text, by Specific Character Set -----------------------------------------------------------------

TEXTS: MappingProxyType[str | None, tuple[str, ...]] = MappingProxyType(
    {
        None: ("Stable compared with prior", "Margins well defined", "Partly calcified"),
        "ISO_IR 100": (
            "Läsion unverändert",
            "Lésion stable, contours réguliers",
            "Nódulo sólido, señal baja",
        ),
        "ISO_IR 192": ("病変は前回と比べて安定", "Σταθερή αλλοίωση", "Очаг без изменений", "Läsion – 結節"),
    }
)
"""TEXT values, tracking identifiers and names must fit the report's character set."""

PERSON_NAMES: MappingProxyType[str | None, tuple[str, ...]] = MappingProxyType(
    {
        None: ("Doe^Jane", "Smith^John^^Dr.", "Roe^Richard^A"),
        "ISO_IR 100": ("Müller^Jürgen", "Lefèvre^Anaïs", "Åström^Þóra"),
        "ISO_IR 192": ("山田^太郎", "Παπαδόπουλος^Νίκος", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    }
)
ORGANIZATIONS: MappingProxyType[str | None, tuple[str, ...]] = MappingProxyType(
    {
        None: ("Synthetic General Hospital",),
        "ISO_IR 100": ("Klinikum Süd", "Hôpital Sainte-Thérèse"),
        "ISO_IR 192": ("合成総合病院", "Νοσοκομείο Συνθετικό"),
    }
)
LESION_WORDS: MappingProxyType[str | None, tuple[str, ...]] = MappingProxyType(
    {
        None: ("Lesion", "Nodule", "Target"),
        "ISO_IR 100": ("Läsion", "Lésion", "Nódulo"),
        "ISO_IR 192": ("結節", "Αλλοίωση", "Очаг"),
    }
)
