"""DICOM UIDs that are no R5 `id` (over 64 characters, or characters no UID has) never reach an `id` element.

ImagingSelection's `studyUid`, `seriesUid`, `frameOfReferenceUid` and `instance.uid` are R5 `id`s
(imaging_selections.UID_ELEMENTS). The generator writes whatever UID its spec holds (pydicom only warns), so
generated reports get one kind of UID malformed at a time: the study (the report's and every referenced
instance's), every series (the report's own, the referenced instances' and the sources for segmentation), every
frame of reference, every other or every referenced SOP instance, or the report's own SOP instance. The malformed report
must map to valid resources with `invalid_value` warnings that say what is wrong without the value, and keep
everything the well-formed report gives that does not depend on the malformed UID.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Set
from typing import Any

import orjson
import pytest
from fhir.resources import get_fhir_model_class

from sr2fhir_core import MappingOptions, MappingResult, dumps_json, map_sr
from sr2fhir_core.fhir.imaging_selections import FHIR_ID, UID_ELEMENTS
from sr2fhir_core.fhir.profiles import SOURCE_SR_CONTENT_ITEM
from sr2fhir_core.options import IgVersion
from sr2fhir_synth import random_spec, write_sr
from sr2fhir_synth.spec import InstanceSpec, ReferencedInstance, ReportSpec

ID_ELEMENTS = {"seriesUid", "studyUid", "uid", "frameOfReferenceUid"}
"""Elements of type `id` that hold a DICOM UID (ImagingSelection, ImagingStudy.series and their instances)."""

UNWRITABLE = ("cannot be written as an ImagingSelection", "no source image selection")
"""Endings of the warnings for a selection left out as a whole (what remains locates nothing)."""

# A UID malformation: what it does to a UID, and what its warnings must say.
MALFORMATIONS: dict[str, tuple[Callable[[str], str], str]] = {
    # 70 characters: digits and dots as a UID has, only too many.
    "too-long": (lambda uid: uid + "." + "9" * (69 - len(uid)), "has 70 characters (an R5 id at most 64)"),
    # The same length, with a character no UID (and no `id`) has; the first "." is unique, so UIDs stay distinct.
    "bad-character": (lambda uid: uid.replace(".", "_", 1), "has characters an R5 id cannot hold"),
}
PROBLEMS = {problem for _, problem in MALFORMATIONS.values()}


def _referenced(step: int) -> Callable[[ReportSpec], Callable[[object, str, str], bool]]:
    """Every `step`th referenced SOP instance (in the references and the evidence)."""

    def select(spec: ReportSpec) -> Callable[[object, str, str], bool]:
        chosen = {i.sop_instance_uid for i in spec.referenced_instances()[::step]}
        return lambda owner, name, uid: (
            isinstance(owner, ReferencedInstance) and name == "sop_instance_uid" and uid in chosen
        )

    return select


# Which UIDs of a spec a target malforms: (the dataclass, field name, value) → malform it?; and the element that
# loses them.
TARGETS: dict[str, tuple[Callable[[ReportSpec], Callable[[object, str, str], bool]], str]] = {
    "study": (lambda spec: lambda _, name, __: name == "study_instance_uid", "studyUid"),
    "series": (lambda spec: lambda _, name, __: name in ("series_instance_uid", "source_series_uid"), "seriesUid"),
    "frame-of-reference": (lambda spec: lambda _, name, __: name == "frame_of_reference_uid", "frameOfReferenceUid"),
    "every-other-referenced-instance": (_referenced(2), "instance.uid"),
    "every-referenced-instance": (_referenced(1), "instance.uid"),
    "report-instance": (
        lambda spec: lambda owner, name, _: isinstance(owner, InstanceSpec) and name == "sop_instance_uid",
        "instance.uid",
    ),
}


def _malform(value: Any, selected: Callable[[object, str, str], bool], malform: Callable[[str], str]) -> Any:
    """`value` with every UID field `selected` names (in nested specs and tuples of them) malformed."""
    if isinstance(value, tuple):
        return tuple(_malform(v, selected, malform) for v in value)
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes = {}
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if isinstance(current, str) and selected(value, f.name, current):
            changes[f.name] = malform(current)
        else:
            changes[f.name] = _malform(current, selected, malform)
    return dataclasses.replace(value, **changes)


SEEDS = (18, 12)
"""18: a source series for segmentation, an image-region-3d, Observation UIDs and seven referenced instances
(a mix of every 2D profile); 12: a volume-surface and an image-region-3d beside 2D references."""


def malformed_reports() -> Iterator[tuple[str, bytes]]:
    """Per seed and malformation, a generated report with every target's UIDs malformed at once (every other
    referenced instance): the profile conformance run validates their mapping against the IG's profiles."""
    for seed in SEEDS:
        spec = random_spec(seed)
        selects = [select(spec) for name, (select, _) in TARGETS.items() if name != "every-referenced-instance"]

        def selected(owner: object, name: str, uid: str, selects: list = selects) -> bool:
            return any(select(owner, name, uid) for select in selects)

        for name, (malform, _) in sorted(MALFORMATIONS.items()):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # pydicom's, about the malformed UIDs
                yield f"{seed:02d}-{name}", write_sr(_malform(spec, selected, malform))


def _id_values(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_ELEMENTS and isinstance(value, str):
                yield key, value
            yield from _id_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _id_values(value)


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _source_series(spec: ReportSpec) -> bool:
    return any(g.source_series_uid for g in spec.all_groups)


def _selections(result: MappingResult) -> dict[str, dict]:
    return {r["id"]: r for r in result.resources if r["resourceType"] == "ImagingSelection"}


def _keys(result: MappingResult, leave_out: Set[str] = frozenset()) -> list[tuple[str, str]]:
    return [(r["resourceType"], r["id"]) for r in result.resources if r["resourceType"] not in leave_out]


def _warnings(result: MappingResult) -> list[tuple[str, str, str]]:
    return [(w.code, w.position, w.message) for w in result.warnings]


@pytest.fixture(scope="module", params=SEEDS)
def spec(request: pytest.FixtureRequest) -> ReportSpec:
    candidate = random_spec(request.param)
    kinds = {r.kind.value for r in candidate.image_references()}
    assert any(g.observation_uid for g in candidate.all_groups)
    assert len(candidate.referenced_instances()) > 2
    assert kinds >= ({"image-region-3d"} | ({"volume-surface"} if request.param == 12 else set()))
    assert request.param == 12 or _source_series(candidate)
    return candidate


@pytest.mark.filterwarnings("ignore:The value length \\(70\\) exceeds:UserWarning")  # that is the point
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
@pytest.mark.parametrize("malformation", sorted(MALFORMATIONS))
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("ig_version", list(IgVersion))
def test_malformed_uid_is_left_out_with_a_warning(
    spec: ReportSpec, ig_version: IgVersion, target: str, malformation: str
) -> None:
    options = MappingOptions(ig_version=ig_version)
    malform, problem = MALFORMATIONS[malformation]
    select, element = TARGETS[target]
    wellformed = map_sr(write_sr(spec), options)
    malformed_uids: set[str] = set()

    def record(uid: str) -> str:
        malformed_uids.add(malform(uid))
        return malform(uid)

    result = map_sr(write_sr(_malform(spec, select(spec), record)), options)
    assert result.mapped, result.record
    assert malformed_uids

    # Valid resources, every `id` element an `id`, every reference resolved (left-out selections included).
    keys = {f"{r['resourceType']}/{r['id']}" for r in result.resources}
    for resource in result.resources:
        for key, value in _id_values(resource):
            assert FHIR_ID.fullmatch(value), (resource["resourceType"], key, len(value))
        assert set(_references(resource)) <= keys, resource["resourceType"]
        get_fhir_model_class(resource["resourceType"]).model_validate(orjson.loads(dumps_json(resource)))

    # Warnings say what is wrong, never the value; nothing else is warned about.
    lost = [w for w in result.warnings if w.message.startswith(UID_ELEMENTS[element] + " ")]
    assert all(w.code == "invalid_value" and problem in w.message for w in lost)
    assert not any(p in w.message for w in lost for p in PROBLEMS - {problem})
    assert not any(uid in w.message for w in result.warnings for uid in malformed_uids)
    unwritable = [w for w in result.warnings if w.message.endswith(UNWRITABLE)]
    assert all(w.code == "invalid_value" for w in unwritable)
    others = Counter(_warnings(result)) - Counter((w.code, w.position, w.message) for w in lost + unwritable)
    assert others == Counter(_warnings(wellformed))

    before, after = _selections(wellformed), _selections(result)
    assert not any(element in s for s in after.values())  # the element-level targets (instance.uid below)
    if target in ("study", "series"):
        # Optional elements: every selection stays, without them; a warning per selection that had one.
        key = "studyUid" if target == "study" else "seriesUid"
        had = [s for s in before.values() if key in s]
        assert had and len(lost) == len(had) and not unwritable
        assert not any(key in s for s in after.values())
        # The study UID keys the ImagingStudy's id (and its identifier): all else keeps its id.
        leave_out = {"ImagingStudy"} if target == "study" else set()
        assert _keys(result, leave_out) == _keys(wellformed, leave_out)
    elif target == "frame-of-reference":
        # 3D regions are located by their frame of reference alone: without it they are left out as a whole.
        located = {i: s for i, s in before.items() if "frameOfReferenceUid" in s}
        assert located and len(lost) == len(located)
        gone = {i for i, s in located.items() if not s.get("instance")}
        assert gone and set(after) == set(before) - gone and len(unwritable) == len(gone)
        assert not any("frameOfReferenceUid" in s for s in after.values())
        leave_out = {"ImagingSelection", "Observation"}
        assert _keys(result, leave_out) == _keys(wellformed, leave_out)
    elif target.endswith("referenced-instance"):
        # Each entry of a malformed instance is left out; a selection left without entries is left out whole.
        dropped = [e for s in before.values() for e in s.get("instance", []) if malform(e["uid"]) in malformed_uids]
        assert dropped and len(lost) == len(dropped)
        assert all(w.message.endswith(": instance left out") for w in lost)
        gone = set()
        for selection_id, selection in before.items():
            entries = [e for e in selection.get("instance", []) if malform(e["uid"]) not in malformed_uids]
            if selection.get("instance") and not entries:
                gone.add(selection_id)
            else:
                assert after[selection_id].get("instance", []) == entries
        assert gone and set(after) == set(before) - gone and len(unwritable) == len(gone)
        # Every other: the valid instances stay; every one: only the 3D regions and the source SR content items.
        referenced = {i.sop_instance_uid for i in spec.referenced_instances()}
        kept = [e for s in after.values() for e in s.get("instance", []) if e["uid"] in referenced]
        assert bool(kept) == target.startswith("every-other")
        if target == "every-referenced-instance" and ig_version is IgVersion.STU1 and _source_series(spec):
            assert any(w.message.endswith("no source image selection") for w in unwritable)
    else:
        # The report's own SOP Instance UID keys every id; under STU1 it is the uid of each source SR content
        # item, which cannot be written without it. The ballot has no such selection.
        sources = [s for s in before.values() if SOURCE_SR_CONTENT_ITEM in s["meta"]["profile"]]
        assert len(lost) == len(sources) and not unwritable
        assert all(w.message.endswith(": no source SR content item") for w in lost)
        assert bool(sources) == (ig_version is IgVersion.STU1)
        assert not any(SOURCE_SR_CONTENT_ITEM in s["meta"]["profile"] for s in after.values())
        assert len(result.resources) == len(wellformed.resources) - len(sources)


@pytest.mark.filterwarnings("ignore:The value length \\(70\\) exceeds:UserWarning")
def test_over_long_and_bad_characters_are_both_said() -> None:
    spec = random_spec(18)
    select, _ = TARGETS["study"]
    result = map_sr(write_sr(_malform(spec, select(spec), lambda uid: (uid + "_9" * 40)[:70])), MappingOptions())
    lost = [w for w in result.warnings if w.message.startswith("study UID ")]
    assert lost
    assert all(
        w.message == "study UID has 70 characters (an R5 id at most 64) and has characters an R5 id cannot hold"
        " (only letters, digits, '-' and '.'): no studyUid"
        for w in lost
    )


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's, about the malformed UIDs
@pytest.mark.parametrize("whitespace", ["\t", "\n", "  "])
@pytest.mark.parametrize("ig_version", list(IgVersion))
def test_sop_class_uid_no_code_can_hold_is_left_out_with_a_warning(ig_version: IgVersion, whitespace: str) -> None:
    """`sopClass.code` is an R5 `code`: whitespace inside a SOP Class UID leaves the entry without it."""
    spec = random_spec(18)
    chosen = {i.sop_instance_uid for i in spec.referenced_instances()[::2]}
    malformed: set[str] = set()

    def malform(uid: str) -> str:
        malformed.add(uid.replace(".", whitespace, 1))
        return uid.replace(".", whitespace, 1)

    def selected(owner: object, name: str, _: str) -> bool:
        return isinstance(owner, ReferencedInstance) and name == "sop_class_uid" and owner.sop_instance_uid in chosen

    options = MappingOptions(ig_version=ig_version)
    wellformed = map_sr(write_sr(spec), options)
    result = map_sr(write_sr(_malform(spec, selected, malform)), options)
    assert result.mapped and malformed

    before, after = _selections(wellformed), _selections(result)
    assert set(after) == set(before)
    bare = 0
    for selection_id, selection in after.items():
        get_fhir_model_class("ImagingSelection").model_validate(orjson.loads(dumps_json(selection)))
        for entry, old in zip(selection.get("instance", []), before[selection_id].get("instance", []), strict=True):
            assert entry["uid"] == old["uid"]  # every entry stays
            if entry["uid"] in chosen:
                assert "sopClass" not in entry
                bare += 1
            else:
                assert entry == old
    lost = [w for w in result.warnings if w.message.startswith("SOP Class UID ")]
    assert bare and len(lost) == bare
    assert all(w.code == "invalid_value" and w.message.endswith(": no sopClass") for w in lost)
    others = Counter(_warnings(result)) - Counter((w.code, w.position, w.message) for w in lost)
    assert others == Counter(_warnings(wellformed))
