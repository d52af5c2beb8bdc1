"""Profile conformance: what sr2fhir writes passes the official HL7 FHIR validator against the IG's profiles.

Every mapped corpus file and a set of generated reports (which between them claim every IG profile the core
emits; some with malformed DICOM UIDs, test_invalid_uids.py) are mapped to collection Bundles and validated in
one run of the HL7 validator (fhir_validator.py), with the IG's StructureDefinitions loaded. A Bundle is
validated whole, so references and the slices discriminated by resolve() find their targets. Errors must be on
the allowlist below, where each entry says why and matches as narrowly as it can. Control Bundles with a
profile-only violation per claimed profile show that each meta.profile is really checked, not skipped.

Skips with a reason when java, mvn or npm, the downloads or the IG definitions (../shared) are missing; with
SR2FHIR_REQUIRE_VALIDATOR=1 (set by .ci/run) a missing validator fails instead.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from conftest import shared_path
from fhir_validator import Issue, UnavailableError, install, validate
from test_invalid_uids import malformed_reports

from sr2fhir_core import IgVersion, MappingOptions, dumps_json, map_sr
from sr2fhir_core.fhir.profiles import IDENTIFIER_TYPE_TRACKING_IDENTIFIER, IG_PROFILE_BASE
from sr2fhir_synth import FIDELITY_FEATURES, every_row_spec, random_spec, write_sr
from sr2fhir_synth import catalog as synth_catalog

pytestmark = pytest.mark.profiles

RELEASES = {
    "ballot": MappingOptions(),
    "post-ballot": MappingOptions(ig_version=IgVersion.STU1),
}
"""IG definitions folder (ig/examples/definitions/<name>) → the options whose output must conform to it."""

SYNTH_SEEDS = range(40)
"""Generated reports; together they claim every IG profile (test_every_ig_profile_is_exercised)."""

PARTICIPANT_SEEDS = frozenset(range(0, 40, 8))
FIDELITY_SEEDS = range(6)
"""Reports with every fidelity case (several finding sites, device observers, segment numbers, other spatial
items, concept modifiers...), and one with every template row (`every_row_spec`)."""
"""Generated reports that carry a Participant Sequence (STU1: dicom-participant-device and -person)."""

ABSTRACT_BASES = {"imaging-observation"}
"""IG profiles no resource claims directly: only their derived profiles."""

UNCONSTRAINED_PROFILES = {
    "ballot": frozenset({"algorithm-identification", "dicom-general-equipment", "dicom-sr-finding-site"}),
    "post-ballot": frozenset(),
}
"""Per release, the profiles whose differential constrains nothing a resource could break (only mustSupport
and mappings): no control violation exists for them; test_no_claimed_profile_is_unknown covers them."""

ERROR = frozenset({"error", "fatal"})
UNKNOWN_PROFILE = IG_PROFILE_BASE + "no-such-profile"


# --- the allowlist ----------------------------------------------------------------------------------------


def _has_data_absent_reason(resource: dict, issue: Issue) -> bool:
    return "dataAbsentReason" in resource


def _element_index(issue: Issue, element: str) -> int | None:
    """The index of `element` in the issue's location (e.g. 2 in `.derivedFrom[2]`), None if absent."""
    match = re.search(rf"\.{element}\[(\d+)\]", issue.expression)
    return int(match.group(1)) if match else None


def _only_point_regions(resource: dict, issue: Issue) -> bool:
    index = _element_index(issue, "instance")
    if index is None:
        return False
    regions = resource["instance"][index].get("imageRegion2D", [])
    return len(regions) > 1 and all(r["regionType"] == "point" for r in regions)


def _claims(resource: dict, profile_id: str) -> bool:
    return IG_PROFILE_BASE + profile_id in resource.get("meta", {}).get("profile", [])


def _derived_measurement_reference(target_type: str | None) -> Callable[[dict, Issue], bool]:
    """A derived measurement whose derivedFrom element (the issue's) refers to a `target_type` resource (None:
    any)."""

    def applies(resource: dict, issue: Issue) -> bool:
        index = _element_index(issue, "derivedFrom")
        return (
            _claims(resource, "derived-imaging-measurement")
            and index is not None
            and (target_type is None or resource["derivedFrom"][index]["reference"].startswith(target_type + "/"))
        )

    return applies


RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def _correct_rt_structure_set_uid(resource: dict, issue: Issue) -> bool:
    return any(i.get("sopClass", {}).get("code") == RT_STRUCTURE_SET_STORAGE for i in resource.get("instance", []))


SYNTHETIC_SCORES_URL = synth_catalog.SYNTHETIC_SCORES.url
assert SYNTHETIC_SCORES_URL is not None  # the synthetic scheme is identified by URL in the SR
SYNTHETIC_EXAMPLE_URLS = (
    SYNTHETIC_SCORES_URL,
    "https://synthetic.example.org/",
)


def _synthetic_example_url(resource: dict, issue: Issue) -> bool:
    return Path(issue.file).name.startswith("synth-") and any(url in issue.message for url in SYNTHETIC_EXAMPLE_URLS)


@dataclass(frozen=True, slots=True)
class Allowed:
    message_id: str
    profile: str | None
    """IG profile id the message must name as its source ("from <url>|"), None for a base-specification check."""
    element: str
    """Text the message must contain (the element or slice)."""
    reason: str
    applies: Callable[[dict, Issue], bool]
    """Checks the resource the issue is about, so the entry covers only the case its reason explains."""
    releases: frozenset[str] = frozenset(RELEASES)
    """The IG releases (definitions folders) whose run the entry applies to."""

    def key(self) -> str:
        return f"{self.message_id} {self.profile} {self.element}"

    def matches(self, issue: Issue, resource: dict, release: str) -> bool:
        return (
            release in self.releases
            and issue.message_id == self.message_id
            and (self.profile is None or f"(from {IG_PROFILE_BASE}{self.profile}|" in issue.message)
            and self.element in issue.message
            and self.applies(resource, issue)
        )


ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "Validation_VAL_Profile_Minimum",
        "imaging-measurement",
        "Observation.value[x]",
        "IG defect (NOTES §8.2.14): the profile requires a value, but a NaN, infinite or absent NUM value has none;"
        " it is written as dataAbsentReason (docs/mapping-decisions.md §1)",
        _has_data_absent_reason,
    ),
    Allowed(
        "Validation_VAL_Profile_Minimum_SLICE",
        "imaging-measurement",
        "Observation.value[x]:valueQuantity",
        "the same measurements as above: the required valueQuantity slice is empty when the value is absent",
        _has_data_absent_reason,
    ),
    Allowed(
        "Validation_VAL_Profile_Minimum",
        "derived-imaging-measurement",
        "Observation.value[x]",
        "IG defect (NOTES §8.2.14), as for imaging-measurement: STU1 made the derived value 1..1 (FHIR-47653), but"
        " an absent or NaN derived NUM value is written as dataAbsentReason (docs/mapping-decisions.md §1)",
        _has_data_absent_reason,
        frozenset({"post-ballot"}),
    ),
    Allowed(
        "Validation_VAL_Profile_Minimum_SLICE",
        "derived-imaging-measurement",
        "Observation.value[x]:valueQuantity",
        "the same derived measurements: the required valueQuantity slice is empty when the value is absent",
        _has_data_absent_reason,
        frozenset({"post-ballot"}),
    ),
    Allowed(
        "Validation_VAL_Profile_MatchMultiple",
        None,  # the message names the profile as "Profile <url>|<version>", not "(from ...)"
        "derived-imaging-measurement|1.0.0, Element matches more than one slice - imagingMeasurementGroupRef,"
        " sourceSRContentItem",
        "IG slicing defect (docs/profile-validation.md, STU1 finding 1): derivedFrom is sliced by `type` at path"
        " `reference`, whose type is string in both slices, so every derivedFrom element matches both; slicing"
        " by target type needs the path resolve()",
        _derived_measurement_reference(None),
        frozenset({"post-ballot"}),
    ),
    Allowed(
        "Reference_REF_BadTargetType",
        None,
        "Found ImagingSelection, but expected one of ([Observation])",
        "the same IG slicing defect: the source-sr-content-item reference, matched to both slices, is also checked"
        " against imagingMeasurementGroupRef's Observation target. Only a derived measurement's derivedFrom"
        " element that refers to an ImagingSelection (its source SR content item)",
        _derived_measurement_reference("ImagingSelection"),
        frozenset({"post-ballot"}),
    ),
    Allowed(
        "Validation_VAL_Profile_Minimum_SLICE",
        "region-in-space",
        "ImagingSelection.instance:rtStructureInstance",
        "IG defect (NOTES §8.2.1): the slice's sopClass pattern has a typo (11.2.840...), so an instance with the"
        " correct RT Structure Set Storage UID, which sr2fhir writes, never matches it",
        _correct_rt_structure_set_uid,
    ),
    Allowed(
        "Validation_VAL_Profile_Maximum",
        "image-region-2d",
        "imageRegion2D: max allowed = 1",
        "recorded decision (docs/mapping-decisions.md §4, NOTES §8.3): R5 has no 2D multipoint region type, so a"
        " SCOORD MULTIPOINT is written as one point region per point, beyond the profile's 1..1",
        _only_point_regions,
    ),
    Allowed(
        "TYPE_SPECIFIC_CHECKS_DT_URL_EXAMPLE",
        None,
        "Example URLs are not allowed",
        "test data, not mapping: sr2fhir_synth's private coding scheme and issuers are example.org URLs on purpose",
        _synthetic_example_url,
    ),
)


# --- the run ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    release: str
    definitions: Path
    """The IG release's definitions folder the files were validated against."""
    bundles: dict[str, dict]
    """File name → Bundle, for every validated file (outputs and controls)."""
    controls: dict[str, str]
    """Control file name (control-<profile id>--<source file name>) → the profile whose violation it carries."""
    issues: list[Issue]

    def outputs(self) -> dict[str, dict]:
        return {name: bundle for name, bundle in self.bundles.items() if name not in self.controls}

    def resource(self, issue: Issue) -> dict:
        match = re.match(r"Bundle\.entry\[(\d+)\]\.resource", issue.expression)
        if match is None:
            return {}
        return self.bundles[Path(issue.file).name]["entry"][int(match.group(1))]["resource"]


def _validator_root() -> Path:
    try:
        return install()
    except UnavailableError as exc:
        if os.environ.get("SR2FHIR_REQUIRE_VALIDATOR") == "1":
            pytest.fail(f"SR2FHIR_REQUIRE_VALIDATOR=1 but the HL7 validator is unavailable: {exc}")
        pytest.skip(f"HL7 FHIR validator unavailable: {exc}")


def _output_bundles(options: MappingOptions) -> dict[str, dict]:
    bundles: dict[str, dict] = {}
    corpus = shared_path() / "corpus"
    for path in sorted(corpus.rglob("*.dcm")):
        result = map_sr(path, options)
        if result.mapped:
            name = "corpus-" + "__".join(path.relative_to(corpus).parts) + ".json"
            bundles[name] = result.bundle()
    for seed in SYNTH_SEEDS:
        result = map_sr(write_sr(random_spec(seed, participants=seed in PARTICIPANT_SEEDS)), options)
        assert result.mapped, result.record
        bundles[f"synth-{seed:02d}.json"] = result.bundle()
    for seed in FIDELITY_SEEDS:
        result = map_sr(write_sr(random_spec(seed, features=FIDELITY_FEATURES)), options)
        assert result.mapped, result.record
        bundles[f"synth-fidelity-{seed:02d}.json"] = result.bundle()
    result = map_sr(write_sr(every_row_spec()), options)
    assert result.mapped, result.record
    bundles["synth-every-row.json"] = result.bundle()
    for name, data in malformed_reports():
        result = map_sr(data, options)
        assert result.mapped, result.record
        bundles[f"synth-malformed-uids-{name}.json"] = result.bundle()
    return bundles


def _violate(resource: dict, profile_id: str, release: str) -> None:
    """Break a rule of the profile (or of the IG base it derives from) that base R5 does not have."""
    if profile_id == "dicom-sr-tracking-identifiers":
        for identifier in resource["identifier"]:
            del identifier["value"]  # identifier slices: value 1..1
    elif resource["resourceType"] == "Observation":
        del resource["partOf"]  # imaging-observation: partOf 1..* (ImagingStudy)
    elif resource["resourceType"] == "ImagingSelection" and release == "ballot":
        del resource["derivedFrom"]  # observation-imaging-selection: derivedFrom 1..* (ImagingStudy)
    elif resource["resourceType"] == "ImagingSelection":
        del resource["subject"]  # STU1 derivedFrom is 0..1; subject 1..1 (Patient) in every selection profile
    elif profile_id == "dicom-sr-finding-site":
        # STU1 tracking identifier slice: value 1..1
        resource.setdefault("identifier", []).append({"type": {"coding": [dict(IDENTIFIER_TYPE_TRACKING_IDENTIFIER)]}})
    elif resource["resourceType"] == "Device" and profile_id != "algorithm-identification":
        resource["identifier"] = [*resource.get("identifier", []), {"value": "second"}, {"value": "third"}]  # 0..1
    elif resource["resourceType"] == "Practitioner":
        resource["name"] = [*resource.get("name", []), {"text": "second"}, {"text": "third"}]  # 0..1
    elif profile_id == "algorithm-identification":
        # STU1: parent only Reference(GeneralEquipmentDevice): point it at this Device, made non-conformant to
        # general equipment (identifier 0..1).
        resource["parent"] = {"reference": f"Device/{resource['id']}"}
        resource["identifier"] = [{"value": "second"}, {"value": "third"}]
    else:
        raise AssertionError(f"no control violation for {profile_id}")


def _control_bundles(outputs: dict[str, dict], release: str) -> tuple[dict[str, dict], dict[str, str]]:
    """Per claimed, constrained IG profile, a copy of the first Bundle claiming it with one resource broken;
    and one Bundle claiming an unknown profile, to learn how the validator reports one."""
    bundles: dict[str, dict] = {}
    controls: dict[str, str] = {}
    for name, bundle in outputs.items():
        for index, entry in enumerate(bundle["entry"]):
            for profile in entry["resource"].get("meta", {}).get("profile", []):
                profile_id = profile.removeprefix(IG_PROFILE_BASE)
                if (
                    profile_id == profile
                    or profile_id in UNCONSTRAINED_PROFILES[release]
                    or profile_id in controls.values()
                ):
                    continue
                control = copy.deepcopy(bundle)
                _violate(control["entry"][index]["resource"], profile_id, release)
                control_name = f"control-{profile_id}--{name}"
                bundles[control_name] = control
                controls[control_name] = profile_id
        if name.startswith("synth-") and UNKNOWN_PROFILE not in controls.values():
            control = copy.deepcopy(bundle)
            control["entry"][0]["resource"]["meta"] = {"profile": [UNKNOWN_PROFILE]}
            bundles[f"control-unknown-profile--{name}"] = control
            controls[f"control-unknown-profile--{name}"] = UNKNOWN_PROFILE
    return bundles, controls


def _definitions(release: str) -> Path:
    return shared_path() / "ig" / "examples" / "definitions" / release


def _bundles(release: str) -> tuple[dict[str, dict], dict[str, str]]:
    """Every file to validate for a release (outputs and controls), and the controls' profiles."""
    outputs = _output_bundles(RELEASES[release])
    controls, control_profiles = _control_bundles(outputs, release)
    return outputs | controls, control_profiles


@pytest.fixture(scope="session", params=sorted(RELEASES))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Run:
    release = request.param
    definitions = _definitions(release)
    if not definitions.is_dir():
        pytest.skip(f"IG definitions not found at {definitions} (set SR2FHIR_SHARED to the shared folder)")
    root = _validator_root()
    bundles, control_profiles = _bundles(release)
    # One validator run per release and session: xdist workers share the session's temporary folder, and the
    # first to take the lock validates every release at once, a JVM each in parallel (each uses about one core),
    # while the other waits for the issues (the mapping is deterministic, so the Bundles agree).
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    with open(shared / "profiles.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jobs: dict[str, tuple[Path, list[Path]]] = {}
        for name in sorted(RELEASES):
            folder = shared / f"profiles-{name}"
            if (folder / "issues.json").is_file() or not _definitions(name).is_dir():
                continue
            folder.mkdir(exist_ok=True)
            files = []
            for file_name, bundle in (bundles if name == release else _bundles(name)[0]).items():
                (folder / file_name).write_bytes(dumps_json(bundle))
                files.append(folder / file_name)
            jobs[name] = (folder, files)
        if jobs:
            with ThreadPoolExecutor(len(jobs)) as pool:
                futures = {
                    name: pool.submit(validate, [_definitions(name)], files, root) for name, (_, files) in jobs.items()
                }
                for name, future in futures.items():
                    issues = future.result()
                    (jobs[name][0] / "issues.json").write_text(json.dumps([asdict(i) for i in issues]))
    issues_file = shared / f"profiles-{release}" / "issues.json"
    issues = [Issue(**i) for i in json.loads(issues_file.read_text())]
    return Run(release, definitions, bundles, control_profiles, issues)


def _output_issues(run: Run) -> list[Issue]:
    return [i for i in run.issues if Path(i.file).name not in run.controls]


# --- the tests --------------------------------------------------------------------------------------------


def test_no_errors_beyond_the_allowlist(run: Run) -> None:
    unexplained = [
        issue
        for issue in _output_issues(run)
        if issue.severity in ERROR and not any(a.matches(issue, run.resource(issue), run.release) for a in ALLOWED)
    ]
    listing = "\n".join(f"{Path(i.file).name} {i.message_id} {i.expression}: {i.message}" for i in unexplained[:40])
    assert not unexplained, f"{len(unexplained)} validator errors are not on the allowlist:\n{listing}"


def test_every_allowlist_entry_is_needed(run: Run) -> None:
    used = Counter(
        allowed.key()
        for issue in _output_issues(run)
        for allowed in ALLOWED
        if allowed.matches(issue, run.resource(issue), run.release)
    )
    unused = [a.key() for a in ALLOWED if run.release in a.releases and not used[a.key()]]
    assert not unused, f"allowlist entries that match nothing (remove them): {unused}"


def test_every_ig_profile_is_exercised(run: Run) -> None:
    definitions = {
        p.stem.removeprefix("StructureDefinition-") for p in run.definitions.glob("StructureDefinition-*.json")
    }
    claimed = {
        profile.removeprefix(IG_PROFILE_BASE)
        for bundle in run.outputs().values()
        for entry in bundle["entry"]
        for profile in entry["resource"].get("meta", {}).get("profile", [])
    }
    assert definitions - ABSTRACT_BASES <= claimed


def test_no_claimed_profile_is_unknown(run: Run) -> None:
    """The validator reports a profile it cannot find (learnt from the unknown-profile control); no output
    resource may claim one, or its profile would go unchecked."""
    unknown = [
        i for i in run.issues if Path(i.file).name.startswith("control-unknown-profile--") and "no-such" in i.message
    ]
    assert unknown, "the validator said nothing about a resource claiming an unknown profile"
    unknown_ids = {i.message_id for i in unknown}
    assert not [i for i in _output_issues(run) if i.message_id in unknown_ids]


def _from_profile(issue: Issue, profile_id: str) -> bool:
    return f"(from {IG_PROFILE_BASE}{profile_id}|" in issue.message


CONTROL_EVIDENCE: dict[str, Callable[[Issue, str], bool]] = {
    # A reference target that misses its profile is reported on the reference, without "(from <profile>)";
    # only algorithm-identification restricts Device.parent to dicom-general-equipment.
    "algorithm-identification": lambda issue, _: (
        issue.expression.endswith(".parent")
        and f"among choices: {IG_PROFILE_BASE}dicom-general-equipment" in issue.message
    ),
}
"""How the validator reports a profile's control violation when the message does not name the profile."""


def test_each_claimed_profile_is_checked(run: Run) -> None:
    """A violation of each constrained profile's rules is reported as an error from that profile."""
    claimed = {
        profile.removeprefix(IG_PROFILE_BASE)
        for bundle in run.outputs().values()
        for entry in bundle["entry"]
        for profile in entry["resource"].get("meta", {}).get("profile", [])
        if profile.startswith(IG_PROFILE_BASE)
    }
    assert claimed - UNCONSTRAINED_PROFILES[run.release] == {p for p in run.controls.values() if p != UNKNOWN_PROFILE}
    for control, profile_id in run.controls.items():
        if profile_id == UNKNOWN_PROFILE:
            continue
        source = control.split("--", 1)[1]
        # New errors only: the source Bundle may already have allowlisted errors from the same profile.
        before = {(i.expression, i.message) for i in run.issues if Path(i.file).name == source}
        reported = [
            i
            for i in run.issues
            if Path(i.file).name == control
            and i.severity in ERROR
            and CONTROL_EVIDENCE.get(profile_id, _from_profile)(i, profile_id)
            and (i.expression, i.message) not in before
        ]
        assert reported, f"breaking a {profile_id} rule was not reported"
