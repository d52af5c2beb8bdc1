"""`write_sample_lake`: a small, clinically believable lake of TID 1500 reports that follow lesions over time.

`corpus.write_sample_corpus` draws every value at random (`random_spec`): good for the job's tests, useless to a
researcher, who sees a 173 litre "nodule" and sites shown as None. This lake is what a first hour with the
research tables should look like: 7 pseudonymous patients (3 on contrast CT, 3 on FDG PET-CT, 1 on liver MR),
each with 2-4 studies weeks to months apart (a baseline and follow-ups), one TID 1500 Measurement Report per
study with 1-4 tracked lesions. A lesion keeps its Tracking Identifier and Tracking Unique Identifier (TID 1410
/ 1411 rows 2-3) at every time point, so that a query can follow it; its Finding Site is a SNOMED CT body
structure, with a Laterality where the organ is paired.

The course of every lesion is written down in `PATIENTS` (a table a reader can check, not a random draw); a seeded
random jitter of a few percent keeps the numbers from looking made up. Lesions grow (+20-40 % over the course),
shrink (a response, -30-60 %), stay stable, shrink then grow again from a nadir, and new lesions appear at
follow-ups. The values stay in these ranges, from these sources:

* Long axis diameter 3-80 mm (here 8-66 mm). RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247): a
  non-nodal lesion is measurable from 10 mm long axis on CT; the 8.5 and 9 mm lung nodules are deliberately
  below it (surveillance, a non-measurable new lesion).
* Short axis of lymph nodes: RECIST 1.1 counts a node as pathological from 10 mm short axis and as a measurable
  target from 15 mm; the nodes here start at 16-31 mm. Responding nodes shrink towards 10 mm (11-14 mm at the
  last study) and the lymphoma's axillary node falls under it (about 9.4 mm): normal again, which RECIST 1.1
  counts as a complete response of that node although it keeps a size.
* Volume 0.05-500 mL (here about 0.2-80 mL): an ellipsoid of the lesion's axes (pi/6 x L x 0.8 L x 0.7 L),
  written in mm3 by the segmentation tool (as dcmqi / 3D Slicer write it) and in ml by the reading workstation,
  so that a query has to convert units as it must with real producers. Lymph nodes are measured in a plane (TID
  1410) and have no volume.
* SUVmax 1-25 g/ml{SUVbw} (PET-CT patients only): FDG-avid tumours and lymphoma nodes 6-21 at baseline, falling
  towards 2-4 (liver background) with a metabolic response (Boellaard et al., EANM guideline, Eur J Nucl Med Mol
  Imaging 2015;42:328-354; Deauville criteria).
* Mean attenuation -100..200 [hnsf'U] on contrast CT (here about 15-125): solid nodules and nodes 15-60, liver
  metastases 45-60 (hypodense to liver), an enhancing renal cell carcinoma 120, an adrenal metastasis 28; a
  responding lesion loses a little (necrosis). The reading workstation writes the unit as DICOM-era producers
  (dcmjs) did, hnsf'U under UCUM, which the mapping corrects to [hnsf'U] (docs/units.md). Not on MR.
* Mean ADC 400-3000 um2/s (liver MR patient only; here about 920-1150): DCM 113041 Apparent Diffusion
  Coefficient with derivation Mean, in um2/s (= 10^-6 mm2/s, PS3.16 CID 7181), as dcmqi writes it for the
  QIN-PROSTATE-Repeatability reports (Fedorov et al., Invest Radiol 2017;52:538-546). Malignant lesions lie at
  roughly 600-1300 um2/s, benign lesions and normal tissue higher (liver cysts and haemangiomas 1700-3000): Taouli
  and Koh, Radiology 2010;254:47-66; Padhani et al., Neoplasia 2009;11:102-125, who also describe the rise of ADC
  in a responding tumour. Colorectal liver metastases here start at 1010-1140 and lose about 10 % as they grow.
* Radiomics (contrast CT patients, every segmented lesion, none for the planar-measured nodes): three IBSI
  features coded as the corpus's pyradiomics report codes them (scheme IBSI, unit UCUM "1", values in
  exponent form), the scheme declared with its PS3.6 UID. Definitions and bounds from the IBSI reference
  manual (Zwanenburg et al., Radiology 2020;295:328-338): Sphericity QCFX in (0, 1], 1 for a sphere (here
  0.63-0.82: nodules rounder than masses, growing lesions less round); Intensity Histogram Entropy TLU2 and
  Joint Entropy of GLCM TU9B in bits, bounded by log2 of the number of grey levels and twice that. Their size
  depends on the discretisation; with pyradiomics' default 25 HU bins on CT the corpus's LIDC-IDRI nodule has
  0.78, 3.64 and 5.77, and the values here are 2.4-3.8 and 3.9-6.1 bits, growing with the lesion.

The three bad inputs of `write_sample_corpus` (a text file, a truncated SR, an SR of another template) are
written too, so that the ledger shows rejections. Same seed, same bytes; folder and file names carry no
patient data. Nothing here is a response assessment: it is synthetic data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from . import catalog
from .catalog import _dcm, _sct
from .corpus import bad_inputs, write_files
from .generate import uid_for
from .spec import (
    Code,
    CodingScheme,
    EquipmentSpec,
    FindingSite,
    GroupTemplate,
    ImageReference,
    InstanceSpec,
    Issuer,
    Measurement,
    MeasurementGroup,
    PatientSpec,
    PersonObserver,
    ReferencedInstance,
    ReferenceKind,
    ReportSpec,
    SRStorage,
    StudySpec,
    TimePointContext,
)
from .writer import ENCODINGS, write_sr

# --- Codes (meanings as in PS3.16 / pydicom's dictionary; tests/test_sample_lake.py checks them) ------------

LONG_AXIS = _sct("103339001", "Long Axis")
SHORT_AXIS = _sct("103340004", "Short Axis")
VOLUME = _sct("118565006", "Volume")
ATTENUATION = _dcm("112031", "Attenuation Coefficient")
SUV_BW = _dcm("126401", "SUVbw")
MEAN = _sct("373098007", "Mean")
MAXIMUM = _sct("56851009", "Maximum")
RECIST_1_1 = _dcm("126081", "RECIST 1.1")
ADC = _dcm("113041", "Apparent Diffusion Coefficient")
SPHERICITY = Code("QCFX", "IBSI", "Sphericity")
INTENSITY_HISTOGRAM_ENTROPY = Code("TLU2", "IBSI", "Intensity Histogram Entropy")
GLCM_JOINT_ENTROPY = Code("TU9B", "IBSI", "Joint Entropy of GLCM")
RADIOMICS = (SPHERICITY, INTENSITY_HISTOGRAM_ENTROPY, GLCM_JOINT_ENTROPY)
"""IBSI feature codes (PS3.16 CID 7477 / 7478 / 7467), as the corpus's pyradiomics report codes them."""
IBSI_SCHEME = CodingScheme(
    designator="IBSI", name="Image Biomarker Standardisation Initiative", uid="1.2.840.10008.2.16.13"
)
"""Declared in the SR's Coding Scheme Identification Sequence with its PS3.6 UID, so that a reader (and FHIR)
has a system for it; the corpus's pyradiomics report uses the designator without declaring it."""

ML = Code("ml", "UCUM", "milliliter")
MM3 = catalog.MM3
MM = catalog.MM
HU = catalog.HU
SUV_BW_UNIT = Code("g/ml{SUVbw}", "UCUM", "Standardized Uptake Value body weight")
"""The current PS3.16 CID 85 spelling (valid UCUM), not the annotation-first one `catalog.SUV_BW` keeps."""
UM2_PER_S = Code("um2/s", "UCUM", "um2/s")
"""Mean ADC as dcmqi writes it (PS3.16 CID 7181; 1 um2/s = 10^-6 mm2/s)."""
NO_UNITS = catalog.NO_UNITS
"""Radiomics features, as pyradiomics writes every one of them (the corpus's report)."""

ABNORMAL_STRUCTURE = _sct("49755003", "Morphologically Abnormal Structure")
NODULE = _sct("27925004", "Nodule")
MASS = _sct("4147007", "Mass")
LESION = _sct("52988006", "Lesion")
LYMPHADENOPATHY = _sct("30746006", "Lymphadenopathy")

LUNG = _sct("39607008", "Lung")
LIVER = _sct("10200004", "Liver")
KIDNEY = _sct("64033007", "Kidney")
ADRENAL = _sct("23451007", "Adrenal gland")
MEDIASTINAL_NODE = _sct("62683002", "mediastinal lymph node")
AXILLARY_NODE = _sct("68171009", "Axillary lymph node")
RETROPERITONEAL_NODE = _sct("91394001", "retroperitoneal lymph node")
INGUINAL_NODE = _sct("8928004", "inguinal lymph node")
NODES = frozenset({MEDIASTINAL_NODE, AXILLARY_NODE, RETROPERITONEAL_NODE, INGUINAL_NODE})

CT_PROCEDURE = _sct("77477000", "Computed Tomography")
PET_CT_PROCEDURE = _sct("443271005", "PET/CT FDG imaging of whole body")
MULTIPARAMETRIC_MRI = _dcm("126020", "Multiparametric MRI")
BASELINE_TYPE = Code("C1442488", "UMLS", "Baseline")
POSTTREATMENT_TYPE = _dcm("126074", "Posttreatment")
BASELINE_EVENT = _dcm("121079", "Baseline")
ENGLISH = Code("en-US", "RFC5646", "English (United States)")

CODES: tuple[Code, ...] = (
    LONG_AXIS,
    SHORT_AXIS,
    VOLUME,
    ATTENUATION,
    SUV_BW,
    MEAN,
    MAXIMUM,
    RECIST_1_1,
    ADC,
    *RADIOMICS,
    ABNORMAL_STRUCTURE,
    NODULE,
    MASS,
    LESION,
    LYMPHADENOPATHY,
    LUNG,
    LIVER,
    KIDNEY,
    ADRENAL,
    *sorted(NODES, key=lambda c: c.value),
    CT_PROCEDURE,
    PET_CT_PROCEDURE,
    MULTIPARAMETRIC_MRI,
    POSTTREATMENT_TYPE,
    BASELINE_EVENT,
)
"""The SCT, DCM and IBSI codes this module adds to the catalog's, for the test against pydicom's dictionary."""

# --- The cohort -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Protocol:
    """How a patient is imaged, and so what the reports measure besides the lesions' size."""

    description: str
    """Study Description."""
    procedure: Code
    """Procedure Reported (TID 1500 row 4, PS3.16 CID 100)."""
    image_class: str
    """SOP Class of the images the calipers are drawn on."""
    attenuation: bool
    """Mean attenuation ([hnsf'U]): CT images."""
    uptake: bool
    """SUVmax: PET."""
    diffusion: bool
    """Mean ADC (um2/s): MR with diffusion-weighted images."""
    radiomics: bool
    """IBSI features of every segmented lesion (contrast CT, a fixed 25 HU bin width as pyradiomics' default)."""


CONTRAST_CT = Protocol(
    "CT CHEST ABDOMEN PELVIS WITH CONTRAST",
    CT_PROCEDURE,
    catalog.CT_IMAGE,
    attenuation=True,
    uptake=False,
    diffusion=False,
    radiomics=True,
)
PET_CT = Protocol(
    "PET-CT FDG WHOLE BODY",
    PET_CT_PROCEDURE,
    catalog.CT_IMAGE,
    attenuation=True,
    uptake=True,
    diffusion=False,
    radiomics=False,
)
LIVER_MR = Protocol(
    "MR LIVER DWI AND DYNAMIC CONTRAST",
    MULTIPARAMETRIC_MRI,
    catalog.MR_IMAGE,
    attenuation=False,
    uptake=False,
    diffusion=True,
    radiomics=False,
)


@dataclass(frozen=True, slots=True)
class LesionPlan:
    """One tracked lesion's course: its long axis at each time point, relative to where it is first seen."""

    label: str
    """Tracking Identifier as a reader would type it ("Target 1", "New 1")."""
    site: Code
    laterality: Code | None
    finding: Code
    long_axis_mm: float
    """Long axis at the first time point the lesion is seen at."""
    course: tuple[float | None, ...]
    """Long axis at each of the patient's time points divided by `long_axis_mm`; None: not (yet) seen."""
    hu: float | None
    """Mean attenuation at first sight ([hnsf'U]); None on MR."""
    short_axis_mm: float | None = None
    """Lymph nodes: short axis at first sight (they are measured in a plane, TID 1410, with both axes)."""
    suv_max: float | None = None
    """PET-CT patients: SUVmax at first sight (g/ml{SUVbw})."""
    adc: float | None = None
    """MR patients: mean ADC at first sight (um2/s)."""

    @property
    def nodal(self) -> bool:
        return self.site in NODES


@dataclass(frozen=True, slots=True)
class PatientPlan:
    """A patient's history: days between consecutive studies and the lesions followed."""

    story: str
    sex: str
    age: int
    protocol: Protocol
    intervals_days: tuple[int, ...]
    lesions: tuple[LesionPlan, ...]


R, L = catalog.RIGHT, catalog.LEFT
PATIENTS: tuple[PatientPlan, ...] = (
    PatientPlan(
        "non-small cell lung cancer, partial response",
        "M",
        67,
        PET_CT,
        (56, 63),
        (
            LesionPlan("Target 1", LUNG, R, MASS, 42.0, (1.0, 0.78, 0.66), 35.0, suv_max=14.2),
            LesionPlan("Target 2", MEDIASTINAL_NODE, None, LYMPHADENOPATHY, 28.0, (1.0, 0.74, 0.58), 40.0, 19.0, 9.1),
        ),
    ),
    PatientPlan(
        "colorectal liver metastases on liver MR, progression with a new lesion",
        "F",
        58,
        LIVER_MR,
        (60, 58, 62),
        (
            LesionPlan("Target 1", LIVER, None, LESION, 31.0, (1.0, 1.12, 1.27, 1.41), None, adc=1060.0),
            LesionPlan("Target 2", LIVER, None, LESION, 18.0, (1.0, 1.10, 1.24, 1.38), None, adc=1140.0),
            LesionPlan("New 1", LIVER, None, LESION, 12.0, (None, None, 1.0, 1.33), None, adc=1010.0),
        ),
    ),
    PatientPlan(
        "renal cell carcinoma, stable primary, growing adrenal metastasis, new lung nodule",
        "M",
        71,
        CONTRAST_CT,
        (84, 91),
        (
            LesionPlan("Target 1", KIDNEY, L, MASS, 64.0, (1.0, 1.02, 0.97), 120.0),
            LesionPlan("Target 2", ADRENAL, R, MASS, 23.0, (1.0, 1.21, 1.36), 28.0),
            LesionPlan("New 1", LUNG, R, NODULE, 9.0, (None, None, 1.0), 30.0),
        ),
    ),
    PatientPlan(
        "lymphoma, metabolic and size response",
        "F",
        46,
        PET_CT,
        (42, 70),
        (
            LesionPlan("Target 1", AXILLARY_NODE, L, LYMPHADENOPATHY, 38.0, (1.0, 0.55, 0.36), 45.0, 26.0, 18.5),
            LesionPlan(
                "Target 2", RETROPERITONEAL_NODE, None, LYMPHADENOPATHY, 45.0, (1.0, 0.60, 0.45), 42.0, 31.0, 21.0
            ),
        ),
    ),
    PatientPlan(
        "incidental lung nodule under surveillance, slow growth",
        "F",
        63,
        CONTRAST_CT,
        (90, 180),
        (LesionPlan("Nodule 1", LUNG, L, NODULE, 8.5, (1.0, 1.06, 1.19), 15.0),),
    ),
    PatientPlan(
        "melanoma, mixed response",
        "M",
        54,
        PET_CT,
        (63,),
        (
            LesionPlan("Target 1", LUNG, R, NODULE, 16.0, (1.0, 0.69), 32.0, suv_max=6.2),
            LesionPlan("Target 2", LIVER, None, LESION, 27.0, (1.0, 1.30), 52.0, suv_max=8.8),
            LesionPlan("Target 3", INGUINAL_NODE, R, LYMPHADENOPATHY, 24.0, (1.0, 0.95), 38.0, 17.0, 7.4),
        ),
    ),
    PatientPlan(
        "breast cancer, response then regrowth from the nadir, new lung nodule",
        "F",
        49,
        CONTRAST_CT,
        (56, 56, 84),
        (
            LesionPlan("Target 1", LIVER, None, LESION, 22.0, (1.0, 0.80, 0.68, 0.86), 46.0),
            LesionPlan("Target 2", AXILLARY_NODE, L, LYMPHADENOPATHY, 21.0, (1.0, 0.85, 0.70, 0.75), 35.0, 16.0),
            LesionPlan("New 1", LUNG, L, NODULE, 11.0, (None, None, None, 1.0), 25.0),
        ),
    ),
)
"""The sample cohort: 7 patients, 22 reports, 17 tracked lesions (3 of them new at a follow-up)."""

TIME_POINT_NAMES = ("baseline", "follow-up 1", "follow-up 2", "follow-up 3")
PIXEL_SPACING_MM = 0.75
"""Of the (synthetic) CT images the long axis calipers are drawn on."""


@dataclass(frozen=True, slots=True)
class SampleReport:
    """One report of the lake: where it goes, what it says, and which plan it came from."""

    path: str
    spec: ReportSpec
    patient: int
    time_point: int


def _seed(seed: int, *labels: object) -> random.Random:
    """A generator per (seed, labels): a string seed hashes with SHA-512, independent of PYTHONHASHSEED."""
    return random.Random("/".join(map(str, ("sr2fhir-sample-lake", seed, *labels))))


def _uid(seed: int, *labels: object) -> str:
    return uid_for("sr2fhir-sample-lake", seed, *labels)


def _jitter(rng: random.Random, value: float, fraction: float) -> float:
    return value * (1.0 + rng.uniform(-fraction, fraction))


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


FINDING_SPHERICITY: dict[Code, float] = {NODULE: 0.80, LESION: 0.74, MASS: 0.68}
"""Typical IBSI sphericity by finding: a small nodule is near round, a large mass lobulated (here 0.6-0.85)."""


def _measurements(
    lesion: LesionPlan,
    factor: float,
    rng: random.Random,
    protocol: Protocol,
    volume_unit: Code,
    hu_spelling: str | None,
    sphericity: float,
) -> tuple[Measurement, ...]:
    """The lesion's NUMs at one time point: sizes scale with `factor`; attenuation, uptake, diffusion and
    texture follow them. `sphericity` is the lesion's own (it keeps its shape from one study to the next)."""
    long_axis = _clamp(_jitter(rng, lesion.long_axis_mm * factor, 0.02), 3.0, 80.0)
    out = [Measurement(concept=LONG_AXIS, value=f"{long_axis:.1f}", unit=MM)]
    if lesion.short_axis_mm is not None:
        short_axis = min(_jitter(rng, lesion.short_axis_mm * factor, 0.02), long_axis * 0.95)
        out.append(Measurement(concept=SHORT_AXIS, value=f"{short_axis:.1f}", unit=MM))
    else:  # an ellipsoid with axes L, 0.8 L and 0.7 L, as a segmentation would measure it
        volume_mm3 = 3.141592653589793 / 6 * long_axis * (0.8 * long_axis) * (0.7 * _jitter(rng, long_axis, 0.04))
        volume = f"{volume_mm3:.0f}" if volume_unit == MM3 else f"{volume_mm3 / 1000:.2f}"
        out.append(Measurement(concept=VOLUME, value=volume, unit=volume_unit))
    if protocol.attenuation and lesion.hu is not None:
        hu = _clamp(lesion.hu + 30.0 * (factor - 1.0) + rng.uniform(-6.0, 6.0), -100.0, 200.0)
        out.append(
            Measurement(concept=ATTENUATION, value=f"{hu:.0f}", unit=HU, derivation=MEAN, unit_spelling=hu_spelling)
        )
    if protocol.uptake and lesion.suv_max is not None:
        suv = _clamp(_jitter(rng, lesion.suv_max * factor**1.5, 0.05), 1.2, 25.0)
        out.append(Measurement(concept=SUV_BW, value=f"{suv:.1f}", unit=SUV_BW_UNIT, derivation=MAXIMUM))
    if protocol.diffusion and lesion.adc is not None:
        # Cell death raises the ADC of a responding lesion; a growing, more cellular one loses a little.
        adc = _clamp(_jitter(rng, lesion.adc * factor**-0.4, 0.03), 400.0, 3000.0)
        out.append(Measurement(concept=ADC, value=f"{adc:.0f}", unit=UM2_PER_S, derivation=MEAN))
    if protocol.radiomics and not lesion.nodal:
        # A growing lesion gets lobulated (less spherical); texture entropy grows with the number of voxels.
        entropy = 2.6 + 0.4 * math.log2(long_axis / 10.0) + rng.uniform(-0.08, 0.08)
        features = {
            SPHERICITY: _clamp(sphericity - 0.1 * (factor - 1.0) + rng.uniform(-0.015, 0.015), 0.4, 0.95),
            INTENSITY_HISTOGRAM_ENTROPY: entropy,
            GLCM_JOINT_ENTROPY: 1.6 * entropy + rng.uniform(-0.1, 0.1),
        }
        # pyradiomics writes every feature in this exponent form, unit "1" (the corpus's report).
        out.extend(Measurement(concept=c, value=f"{v:.6E}", unit=NO_UNITS) for c, v in features.items())
    return tuple(out)


def _caliper(rng: random.Random, long_axis_mm: float) -> tuple[float, ...]:
    """A 2-point POLYLINE along the long axis, in quarter pixels (exact in Graphic Data's float32)."""
    cx, cy = rng.randint(600, 1400) / 4, rng.randint(600, 1400) / 4
    half = round(long_axis_mm / PIXEL_SPACING_MM / 2 * 4) / 4
    return (cx - half, cy, cx + half, cy)


def sample_reports(seed: int = 0) -> list[SampleReport]:
    """Every report of the lake, patient by patient and time point by time point (the truth tests check)."""
    reports: list[SampleReport] = []
    for p, plan in enumerate(PATIENTS):
        rng = _seed(seed, "patient", p)
        baseline = date(2022, 9, 5) + timedelta(days=rng.randrange(540))
        birth = baseline - timedelta(days=plan.age * 365 + rng.randrange(365))
        patient = PatientSpec(
            patient_id=f"PSN{rng.randrange(10**6):06d}",
            issuer=Issuer(
                local_namespace="SAMPLE-PSEUDONYMS", universal_id=_uid(seed, "issuer"), universal_id_type="ISO"
            ),
            name=f"Pseudonym^Patient{p + 1:02d}",
            birth_date=f"{birth:%Y%m%d}",
            sex=plan.sex,
        )
        offsets = [0]
        for interval in plan.intervals_days:
            offsets.append(offsets[-1] + interval + rng.randint(-3, 3))
        for t, offset in enumerate(offsets):
            reports.append(_report(seed, p, plan, patient, t, baseline + timedelta(days=offset), offset, len(reports)))
    return reports


def _report(
    seed: int, p: int, plan: PatientPlan, patient: PatientSpec, t: int, day: date, offset: int, index: int
) -> SampleReport:
    rng = _seed(seed, "report", p, t)
    study_uid = _uid(seed, p, t, "study")
    ct_series = _uid(seed, p, t, "ct-series")
    seg = ReferencedInstance(
        sop_class_uid=catalog.SEGMENTATION,
        sop_instance_uid=_uid(seed, p, t, "seg"),
        series_instance_uid=_uid(seed, p, t, "seg-series"),
        study_instance_uid=study_uid,
    )
    # Two producers, as in a real archive: a segmentation tool (volumes in mm3, HU as [hnsf'U]) and a reading
    # workstation (volumes in ml, HU written hnsf'U as dcmjs did); which one read a study alternates.
    workstation = (p + t) % 2 == 1
    volume_unit = ML if workstation else MM3
    hu_spelling = catalog.UNIT_MISSPELLINGS[HU.value] if workstation else None
    groups = []
    for k, lesion in enumerate(plan.lesions):
        factor = lesion.course[t]
        if factor is None:
            continue
        image = ReferencedInstance(
            sop_class_uid=plan.protocol.image_class,
            sop_instance_uid=_uid(seed, p, t, "image", k),
            series_instance_uid=ct_series,
            study_instance_uid=study_uid,
        )
        sphericity = FINDING_SPHERICITY.get(lesion.finding, 0.7) + _seed(seed, "lesion", p, k).uniform(-0.04, 0.04)
        measurements = _measurements(lesion, factor, rng, plan.protocol, volume_unit, hu_spelling, sphericity)
        if lesion.nodal:
            template = GroupTemplate.PLANAR_ROI
            caliper = _caliper(rng, float(measurements[0].value or 0))
            references = (
                ImageReference(
                    kind=ReferenceKind.IMAGE_REGION_2D, instance=image, graphic_type="POLYLINE", graphic_data=caliper
                ),
            )
            source_series = None
        else:
            template = GroupTemplate.VOLUMETRIC_ROI
            segment = ReferencedInstance(
                sop_class_uid=seg.sop_class_uid,
                sop_instance_uid=seg.sop_instance_uid,
                series_instance_uid=seg.series_instance_uid,
                study_instance_uid=study_uid,
                segment_numbers=(k + 1,),
            )
            references = (ImageReference(kind=ReferenceKind.REFERENCED_SEGMENT, instance=segment),)
            source_series = ct_series
        groups.append(
            MeasurementGroup(
                template=template,
                tracking_identifier=lesion.label,
                tracking_uid=_uid(seed, p, "lesion", k),
                time_point=TIME_POINT_NAMES[t],
                time_point_context=TimePointContext(
                    protocol_time_point_identifier=f"TP{t}",
                    types=(BASELINE_TYPE if t == 0 else POSTTREATMENT_TYPE,),
                    order=t + 1,
                    offset_days=str(offset),
                    offset_event=BASELINE_EVENT,
                ),
                finding_category=ABNORMAL_STRUCTURE,
                finding=lesion.finding,
                finding_sites=(FindingSite(site=lesion.site, laterality=lesion.laterality),),
                method=RECIST_1_1,
                image_references=references,
                source_series_uid=source_series,
                measurements=measurements,
                observation_uid=_uid(seed, p, t, "group", k),
            )
        )
    study_time = f"{rng.randint(8, 16):02d}{rng.randint(0, 59):02d}00"
    spec = ReportSpec(
        patient=patient,
        study=StudySpec(
            study_instance_uid=study_uid,
            study_date=f"{day:%Y%m%d}",
            study_time=study_time,
            study_id=str(t + 1),
            accession_number=f"ACC{rng.randrange(10**7):07d}",
            description=plan.protocol.description,
        ),
        equipment=EquipmentSpec(
            manufacturer="sr2fhir_synth",
            model_name="Sample Reading Workstation" if workstation else "Sample Segmentation Tool",
            software_versions=("2.4",) if workstation else ("1.9.1",),
            institution_name="Synthetic General Hospital",
        ),
        instance=InstanceSpec(
            sop_class=SRStorage.COMPREHENSIVE_SR,
            sop_instance_uid=_uid(seed, p, t, "sr"),
            series_instance_uid=_uid(seed, p, t, "sr-series"),
            series_number=900,
            instance_number=1,
            series_description="Lesion measurements",
            content_date=f"{day + timedelta(days=rng.randint(0, 2)):%Y%m%d}",
            content_time=f"{rng.randint(8, 18):02d}{rng.randint(0, 59):02d}00",
            preliminary_flag="FINAL",
            verification_flag="VERIFIED" if workstation else "UNVERIFIED",
        ),
        language=ENGLISH,
        procedures_reported=(plan.protocol.procedure,),
        person_observers=(PersonObserver(name="Reader^Synthetic", organization="Synthetic General Hospital"),),
        groups=tuple(groups),
        coding_schemes=(IBSI_SCHEME,) if any(m.concept in RADIOMICS for g in groups for m in g.measurements) else (),
    )
    folder = f"site-{'ab'[p % 2]}/subject-{p + 1:02d}/study-{t + 1:02d}"
    name = f"SR{index + 1:06d}" if index % 5 == 4 else f"sr-{index + 1:03d}.dcm"  # PACS exports: no extension
    return SampleReport(path=f"{folder}/{name}", spec=spec, patient=p, time_point=t)


def write_sample_lake(directory: Path, seed: int = 0) -> list[Path]:
    """Write the sample cohort's reports (in every encoding the writer knows, in turn) and the three bad inputs
    under `directory`; return every path, sorted. The same seed always gives byte-identical files."""
    files: dict[str, bytes] = {}
    for index, report in enumerate(sample_reports(seed)):
        files[report.path] = write_sr(report.spec, ENCODINGS[index % len(ENCODINGS)])
    files.update(bad_inputs(next(iter(files.values())), seed))  # the truncated SR: the first report, cut
    return write_files(directory, files)
