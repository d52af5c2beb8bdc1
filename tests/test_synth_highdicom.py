"""Independent cross-check: TID 1500 reports built with highdicom's own API, mapped by sr2fhir, must say
what highdicom reads back from the same bytes (groups, tracking ids, measurement codes, values, units,
derivation, method, finding sites, qualitative evaluations, image references).

highdicom is a dev dependency only; its reports are built once per session (about a second).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from highdicom.sr import (
        CodedConcept,
        Comprehensive3DSR,
        ComprehensiveSR,
        EnhancedSR,
        FindingSite,
        ImageRegion,
        Measurement,
        MeasurementReport,
        MeasurementsAndQualitativeEvaluations,
        ObservationContext,
        PlanarROIMeasurementsAndQualitativeEvaluations,
        TrackingIdentifier,
        VolumetricROIMeasurementsAndQualitativeEvaluations,
    )

    Group = (
        PlanarROIMeasurementsAndQualitativeEvaluations
        | VolumetricROIMeasurementsAndQualitativeEvaluations
        | MeasurementsAndQualitativeEvaluations
    )
    """A TID 1500 measurement group as highdicom reads it back (TID 1410, 1411, 1501)."""

hd = pytest.importorskip("highdicom")
np = pytest.importorskip("numpy")

from pydicom.dataset import Dataset  # noqa: E402
from pydicom.sr.codedict import codes  # noqa: E402

from sr2fhir_core import MappingResult, map_sr  # noqa: E402

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
PET_IMAGE = "1.2.840.10008.5.1.4.1.1.128"
STUDY = "2.25.31415926535897932384626433832795028841"
SCHEME_SYSTEMS = {"SCT": "http://snomed.info/sct", "DCM": "http://dicom.nema.org/resources/ontology/DCM"}


def _instance(sop_class: str, series: str, number: int, modality: str) -> Dataset:
    """The header of a referenced instance: all highdicom needs for the evidence sequences."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"{series}.{number}"
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series
    ds.Modality = modality
    ds.PatientID = "HD-0001"
    ds.PatientName = "Cross^Check"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.StudyDate = "20210304"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "HD-ACC-1"
    ds.ReferringPhysicianName = ""
    return ds


CT = [_instance(CT_IMAGE, "2.25.1001", n, "CT") for n in (1, 2, 3)]
PET = [_instance(PET_IMAGE, "2.25.1004", n, "PT") for n in (1, 2)]
SEG = _instance(SEGMENTATION, "2.25.1002", 1, "SEG")
FRAME_OF_REFERENCE = "2.25.1003"


def _observer(name: str) -> ObservationContext:
    person = hd.sr.PersonObserverIdentifyingAttributes(name=name)
    return hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person, observer_identifying_attributes=person
        )
    )


def _tracking(identifier: str, uid: str) -> TrackingIdentifier:
    return hd.sr.TrackingIdentifier(identifier=identifier, uid=uid)


def _region(image: Dataset, graphic_type: str, points: list[list[float]]) -> ImageRegion:
    return hd.sr.ImageRegion(
        graphic_type=graphic_type,
        graphic_data=np.array(points),
        source_image=hd.sr.SourceImageForRegion(image.SOPClassUID, image.SOPInstanceUID),
    )


def _report_planar_volumetric_and_generic() -> Comprehensive3DSR:
    algorithm = hd.sr.AlgorithmIdentification(name="hd-cross-check", version="1.2")
    planar = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("Nodule 1", "2.25.555001"),
        referenced_region=_region(CT[0], "POLYLINE", [[10.5, 20.25], [30, 40], [50, 20], [10.5, 20.25]]),
        finding_type=codes.SCT.Nodule,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung)],
        algorithm_id=algorithm,
        measurements=[
            hd.sr.Measurement(
                name=codes.SCT.Area,
                value=123.456,
                unit=codes.UCUM.SquareMillimeter,
                method=codes.DCM.RECIST1Point1,
                derivation=codes.SCT.Maximum,
                finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung, laterality=codes.SCT.Right)],
            ),
            hd.sr.Measurement(name=codes.SCT.Diameter, value=7.0, unit=codes.UCUM.Millimeter),
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                name=hd.sr.CodedConcept("C45992", "NCIt", "Subtlety score"),
                value=hd.sr.CodedConcept("3", "99HDX", "3 out of 5"),
            )
        ],
    )
    volumetric = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("Liver lesion", "2.25.555002"),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=SEG.SOPClassUID,
            sop_instance_uid=SEG.SOPInstanceUID,
            segment_number=2,
            source_series=hd.sr.SourceSeriesForSegmentation(CT[0].SeriesInstanceUID),
        ),
        finding_type=codes.SCT.Lesion,
        measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=31112.2, unit=codes.UCUM.CubicMillimeter)],
    )
    generic = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("Liver density", "2.25.555003"),
        measurements=[
            hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient, value=-12.5, unit=codes.UCUM.HounsfieldUnit)
        ],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=codes.SCT.Severity, value=codes.SCT.Severe)],
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[*CT, SEG],
        content=hd.sr.MeasurementReport(
            observation_context=_observer("Doe^Jane"),
            procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
            imaging_measurements=[planar, volumetric, generic],
        ),
        series_instance_uid="2.25.2001",
        series_number=901,
        sop_instance_uid="2.25.2001.1",
        instance_number=1,
        manufacturer="highdicom cross-check",
    )


def _report_segmentation_frames_and_pet() -> ComprehensiveSR:
    groups = [
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=_tracking(f"Lesion {n}", f"2.25.666{n:03d}"),
            referenced_segment=hd.sr.ReferencedSegmentationFrame(
                sop_class_uid=SEG.SOPClassUID,
                sop_instance_uid=SEG.SOPInstanceUID,
                frame_number=n + 2,
                segment_number=n,
                source_image=hd.sr.SourceImageForSegmentation(PET[0].SOPClassUID, PET[0].SOPInstanceUID),
            ),
            finding_type=codes.SCT.Neoplasm,
            method=codes.DCM.RECIST1Point0,
            measurements=[
                hd.sr.Measurement(
                    name=codes.SCT.LongAxis,
                    value=10.0 * n + 0.25,
                    unit=codes.UCUM.Millimeter,
                    derivation=codes.SCT.Mean,
                ),
                hd.sr.Measurement(name=codes.SCT.ShortAxis, value=5.0 * n + 0.125, unit=codes.UCUM.Millimeter),
            ],
        )
        for n in (1, 2, 3)
    ]
    return hd.sr.ComprehensiveSR(
        evidence=[*PET, SEG],
        content=hd.sr.MeasurementReport(
            observation_context=_observer("Müller^Jürgen"),
            procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
            imaging_measurements=groups,
        ),
        series_instance_uid="2.25.2002",
        series_number=902,
        sop_instance_uid="2.25.2002.1",
        instance_number=1,
        manufacturer="highdicom cross-check",
    )


def _report_three_dimensional() -> Comprehensive3DSR:
    region = hd.sr.ImageRegion3D(
        graphic_type="POLYGON",
        graphic_data=np.array([[1.0, 2.0, 3.0], [4.5, 2.0, 3.0], [4.5, 6.5, 3.0], [1.0, 2.0, 3.0]]),
        frame_of_reference_uid=FRAME_OF_REFERENCE,
    )
    surface = hd.sr.VolumeSurface(
        graphic_type="ELLIPSOID",
        graphic_data=np.array(
            [[0.0, 0, 10], [20, 0, 10], [10, -5, 10], [10, 5, 10], [10, 0, 5], [10, 0, 15]], dtype=float
        ),
        frame_of_reference_uid=FRAME_OF_REFERENCE,
        source_series=hd.sr.SourceSeriesForSegmentation(CT[0].SeriesInstanceUID),
    )
    planar = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("Plane 1", "2.25.777001"),
        referenced_region=region,
        finding_type=codes.SCT.Mass,
        measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=15.75, unit=codes.UCUM.SquareMillimeter)],
    )
    volumetric = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking("Volume 1", "2.25.777002"),
        referenced_volume_surface=surface,
        finding_type=codes.SCT.Mass,
        measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=2094.4, unit=codes.UCUM.CubicMillimeter)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=codes.SCT.Severity, value=codes.SCT.Mild)],
    )
    return hd.sr.Comprehensive3DSR(
        evidence=CT,
        content=hd.sr.MeasurementReport(
            observation_context=_observer("Roe^Richard"),
            procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
            imaging_measurements=[planar, volumetric],
        ),
        series_instance_uid="2.25.2003",
        series_number=903,
        sop_instance_uid="2.25.2003.1",
        instance_number=1,
        manufacturer="highdicom cross-check",
    )


@dataclass(frozen=True)
class Built:
    name: str
    data: bytes
    result: MappingResult
    read: EnhancedSR | ComprehensiveSR | Comprehensive3DSR
    """What highdicom reads back from the same bytes (`highdicom.sr.srread`)."""

    def resource(self, reference: str) -> dict:
        return next(r for r in self.result.resources if f"{r['resourceType']}/{r['id']}" == reference)

    def report(self) -> MeasurementReport:
        """The content as highdicom parses a TID 1500 document (typed as a plain content sequence)."""
        content = self.read.content
        assert isinstance(content, hd.sr.MeasurementReport)
        return content

    def groups(self) -> list[Group]:
        content = self.report()
        return (
            content.get_planar_roi_measurement_groups()
            + content.get_volumetric_roi_measurement_groups()
            + content.get_image_measurement_groups()
        )


@pytest.fixture(scope="session")
def built() -> list[Built]:
    out = []
    for make in (
        _report_planar_volumetric_and_generic,
        _report_segmentation_frames_and_pet,
        _report_three_dimensional,
    ):
        buffer = io.BytesIO()
        make().save_as(buffer)
        data = buffer.getvalue()
        out.append(Built(make.__name__, data, map_sr(data), hd.sr.srread(io.BytesIO(data))))
    return out


def _system(code: CodedConcept) -> str:
    return SCHEME_SYSTEMS.get(code.scheme_designator, "")


def _site(measurement: Measurement, group: Group) -> FindingSite | None:
    sites = measurement.finding_sites or group.finding_sites
    return sites[0] if sites else None


def test_highdicom_reports_are_mapped(built: list[Built]) -> None:
    for report in built:
        record = report.result.record
        assert record.status.value == "mapped", (report.name, record)
        assert record.sop_instance_uid == report.read.SOPInstanceUID
        assert record.measurement_groups == len(report.groups())
        assert record.measurements == sum(len(g.get_measurements()) for g in report.groups())
        assert record.qualitative_evaluations == sum(len(g.get_qualitative_evaluations()) for g in report.groups())


def test_measurements_equal_what_highdicom_reads(built: list[Built]) -> None:
    for report in built:
        rows = report.result.rows["measurements"]
        for group in report.groups():
            mine = [r for r in rows if r["tracking_uid"] == group.tracking_uid]
            theirs = group.get_measurements()
            assert len(mine) == len(theirs), report.name
            for row, measurement in zip(mine, theirs, strict=True):
                assert row["tracking_identifier"] == group.tracking_identifier
                assert row["finding_code"] == (group.finding_type.value if group.finding_type else None)
                assert (row["measurement_code"], row["measurement_system"]) == (
                    measurement.name.value,
                    _system(measurement.name),
                )
                assert row["value"] == measurement.value
                assert float(row["value_text"]) == measurement.value
                assert row["unit_code"] == measurement.unit.value
                assert row["derivation_code"] == (measurement.derivation.value if measurement.derivation else None)
                method = measurement.method or group.method
                assert row["method_code"] == (method.value if method else None)
                site = _site(measurement, group)
                assert row["finding_site_code"] == (site.value.value if site else None)
                laterality = site.laterality if site else None
                assert row["laterality_code"] == (laterality.value if laterality else None)
                observation = report.resource(f"Observation/{row['observation_id']}")
                quantity = observation["valueQuantity"]
                assert float(quantity["value"]) == measurement.value
                assert (quantity["code"], quantity["unit"]) == (
                    measurement.unit.value,
                    measurement.unit.meaning,
                )
                assert observation["code"]["coding"][0]["code"] == measurement.name.value


def test_qualitative_evaluations_equal_what_highdicom_reads(built: list[Built]) -> None:
    for report in built:
        rows = report.result.rows["qualitative_evaluations"]
        for group in report.groups():
            mine = [(r["evaluation_code"], r["value_code"]) for r in rows if r["tracking_uid"] == group.tracking_uid]
            # highdicom annotates QualitativeEvaluation.value as int | float; it is the CODE item's CodedConcept.
            theirs = [(q.name.value, q.value.value) for q in group.get_qualitative_evaluations()]  # type: ignore[union-attr]
            assert mine == theirs


def test_group_observations_and_image_references(built: list[Built]) -> None:
    evidence = {ds.SOPInstanceUID: ds for ds in [*CT, *PET, SEG]}
    for report in built:
        rows = report.result.rows["measurements"]
        for group in report.groups():
            [group_id] = {r["group_observation_id"] for r in rows if r["tracking_uid"] == group.tracking_uid}
            observation = report.resource(f"Observation/{group_id}")
            finding = observation.get("valueCodeableConcept", {}).get("coding", [{}])[0].get("code")
            assert finding == (group.finding_type.value if group.finding_type else None)
            focus = [report.resource(f["reference"]) for f in observation["focus"]]
            tracking = [r for r in focus if r["resourceType"] == "BodyStructure"]
            assert {i["value"] for r in tracking for i in r["identifier"]} == {
                group.tracking_identifier,
                f"urn:oid:{group.tracking_uid}",
            }
            selections = [r for r in focus if r["resourceType"] == "ImagingSelection"]
            _check_references(group, selections, evidence)


def _check_references(group: Group, selections: list[dict], evidence: dict[str, Dataset]) -> None:
    """highdicom's view of the group's ROI against the ImagingSelection the mapping made of it."""
    roi = getattr(group, "roi", None)  # TID 1501 groups have no ROI
    if isinstance(roi, list):  # a volumetric ROI as a set of planar regions
        roi = roi[0] if roi else None
    segment = getattr(group, "referenced_segment", None) or getattr(group, "referenced_segmentation_frame", None)
    if isinstance(roi, hd.sr.ImageRegion):
        [selection] = [s for s in selections if s["code"]["coding"][0]["code"] == "111030"]
        [region] = selection["instance"][0]["imageRegion2D"]
        assert region["regionType"] == roi.graphic_type.value.lower()
        assert region["coordinate"] == roi.value.flatten().tolist()
    elif isinstance(roi, hd.sr.ImageRegion3D | hd.sr.VolumeSurface):
        code = "111030" if isinstance(roi, hd.sr.ImageRegion3D) else "121231"
        [selection] = [s for s in selections if s["code"]["coding"][0]["code"] == code]
        assert selection["frameOfReferenceUid"] == roi.frame_of_reference_uid
    elif segment is not None:
        [selection] = [s for s in selections if s["code"]["coding"][0]["code"] in ("121191", "121214")]
        [instance] = selection["instance"]
        assert instance["uid"] == segment.referenced_sop_instance_uid
        assert instance["sopClass"]["code"] == segment.referenced_sop_class_uid
        expected = segment.referenced_segment_numbers or segment.referenced_frame_numbers
        if selection["code"]["coding"][0]["code"] == "121191":
            expected = segment.referenced_segment_numbers
        assert instance["subset"] == [str(n) for n in expected]
        assert selection["seriesUid"] == evidence[instance["uid"]].SeriesInstanceUID
        assert selection["studyUid"] == evidence[instance["uid"]].StudyInstanceUID
    else:
        assert selections == []


def test_observer_becomes_the_performer(built: list[Built]) -> None:
    for report in built:
        practitioners = [r for r in report.result.resources if r["resourceType"] == "Practitioner"]
        observers = report.report().get_observer_contexts(observer_type=codes.DCM.Person)
        names = [o.observer_identifying_attributes.name for o in observers]
        assert [p["name"][0]["family"] for p in practitioners] == [str(n).split("^")[0] for n in names]
