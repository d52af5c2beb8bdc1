"""The official HL7 FHIR validator (org.hl7.fhir.validation, Java), installed and run offline for the profile tests.

`install()` fetches pinned jars from Maven Central (`mvn dependency:copy-dependencies`, every repository mirrored to
Central: the validator's POMs also name jitpack.io) and the FHIR packages the engine needs from the npm registry
(`npm pack`), into a cache directory: $SR2FHIR_VALIDATOR_CACHE, else ~/.cache/sr2fhir/fhir-validator. A second call
finds everything in place and only checks stamps. `validate()` runs BatchValidate.java once over many files and
returns one `Issue` per validator message.

The Java side runs with user.home set to the cache, so the engine finds its package cache there
(`.fhir/packages/<id>#<version>/package/`) and never reaches for the real home or packages.fhir.org.

FHIR R4 (`validate(..., release="r4")`): `hl7.fhir.r4.core` is on packages.fhir.org only, so `install()` builds it:
the R4 definition Bundles HAPI FHIR ships on Maven Central (`hapi-fhir-validation-resources-r4`) become the package
folder `.fhir/packages/hl7.fhir.r4.core#4.0.1/package/` (R4CorePackage.java), which the engine then loads as it
would the published package; the cross-version extensions it generates from `hl7.fhir.xver-extensions`' path maps.

    python tests/profile_validation/fhir_validator.py install
    python tests/profile_validation/fhir_validator.py validate DEFINITIONS_DIR FILE...
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
JAVA_SOURCE = HERE / "BatchValidate.java"
R4_PACKAGE_SOURCE = HERE / "R4CorePackage.java"

MAVEN_ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    # 7.0.x needs org.hl7.fhir.services, which is not on Maven Central.
    ("ca.uhn.hapi.fhir", "org.hl7.fhir.validation", "6.10.4"),
    # UCUM unit validation; the validator declares it optional.
    ("org.fhir", "ucum", "1.0.10"),
)
FHIR_PACKAGES: tuple[tuple[str, str], ...] = (
    ("hl7.fhir.r5.core", "5.0.0"),
    ("hl7.terminology.r5", "7.0.1"),
    ("hl7.fhir.uv.extensions.r5", "5.3.0-ballot-tc1"),
    # Not loaded explicitly, but the engine asks for it while starting and would go to packages.fhir.org; under R4
    # it holds the path maps the cross-version extensions are generated from.
    ("hl7.fhir.xver-extensions", "0.1.0"),
    ("hl7.terminology.r4", "7.0.1"),
    ("hl7.fhir.uv.extensions.r4", "5.3.0-ballot-tc1"),
)
R4_DEFINITIONS = ("ca.uhn.hapi.fhir", "hapi-fhir-validation-resources-r4", "8.8.0")
"""The R4 specification's definition Bundles (XML), from which `hl7.fhir.r4.core#4.0.1` is built."""
R4_EXTENSIONS = ("StructureDefinition-alternate-reference.json",)
"""From the R4 extensions pack, only what the R4 output uses: the pack also redefines R4 core extensions in newer
versions (5.3.0 narrows `bodySite` to a few elements), which would replace the 4.0.1 definitions validated against."""


@dataclass(frozen=True, slots=True)
class Release:
    core: str
    """The core package (id#version), whose version is the FHIR version validated against."""
    folders: tuple[str, ...]
    """Folders under the cache loaded after the core, before the caller's definitions."""


RELEASES = {
    "r5": Release(
        "hl7.fhir.r5.core#5.0.0",
        (
            ".fhir/packages/hl7.terminology.r5#7.0.1/package",
            ".fhir/packages/hl7.fhir.uv.extensions.r5#5.3.0-ballot-tc1/package",
        ),
    ),
    "r4": Release("hl7.fhir.r4.core#4.0.1", (".fhir/packages/hl7.terminology.r4#7.0.1/package", "r4-extensions")),
}
"""Per FHIR release, what the engine loads. The terminology and extension packages are loaded as the IG's package
would pull them in (THO code systems such as v2-0203), as folders: as packages the engine would chase their
dependencies' exact versions (THO 7.0.1 names extensions 5.2.0), which npm does not have, on packages.fhir.org."""

_SETTINGS_XML = (
    "<settings><mirrors><mirror><id>central-only</id><mirrorOf>*</mirrorOf>"
    "<url>https://repo1.maven.org/maven2</url></mirror></mirrors></settings>\n"
)


class UnavailableError(RuntimeError):
    """The validator cannot be installed or run here (no java/mvn/npm, or a download failed)."""


@dataclass(frozen=True, slots=True)
class Issue:
    file: str
    severity: str
    """fatal | error | warning | information"""
    message_id: str
    expression: str
    """FHIRPath location of the issue in the validated file, e.g. Bundle.entry[3].resource/*Observation/x*/.code"""
    message: str


def cache_dir() -> Path:
    configured = os.environ.get("SR2FHIR_VALIDATOR_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "sr2fhir" / "fhir-validator"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise UnavailableError(f"{tool} not found on PATH")
    return path


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise UnavailableError(f"{' '.join(command[:3])} ... failed ({done.returncode}):\n" + "\n".join(tail))


def _pom() -> str:
    dependencies = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in MAVEN_ARTIFACTS
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>sr2fhir</groupId><artifactId>fhir-validator-deps</artifactId><version>1</version>"
        f"<dependencies>{dependencies}</dependencies></project>\n"
    )


def _install_jars(root: Path) -> Path:
    lib = root / "lib"
    stamp = lib / ".installed"
    wanted = _pom()
    if stamp.is_file() and stamp.read_text() == wanted:
        return lib
    mvn = _require("mvn")
    with tempfile.TemporaryDirectory(dir=root) as work:
        work_path = Path(work)
        (work_path / "pom.xml").write_text(wanted)
        (work_path / "settings.xml").write_text(_SETTINGS_XML)
        _run(
            [mvn, "-q", "-B", "-s", "settings.xml", "dependency:copy-dependencies", "-DoutputDirectory=lib"],
            work_path,
        )
        (work_path / "lib" / ".installed").write_text(wanted)
        shutil.rmtree(lib, ignore_errors=True)
        (work_path / "lib").rename(lib)
    return lib


def package_dir(root: Path, package_id: str, version: str) -> Path:
    return root / ".fhir" / "packages" / f"{package_id}#{version}"


def _install_packages(root: Path) -> None:
    for package_id, version in FHIR_PACKAGES:
        target = package_dir(root, package_id, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        if (target / "package" / "package.json").is_file():
            continue
        npm = _require("npm")
        with tempfile.TemporaryDirectory(dir=root) as work:
            work_path = Path(work)
            _run([npm, "pack", "--silent", f"{package_id}@{version}"], work_path)
            (tgz,) = work_path.glob("*.tgz")
            unpacked = work_path / "unpacked"
            with tarfile.open(tgz) as archive:
                archive.extractall(unpacked, filter="data")
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)


def _install_r4(root: Path) -> None:
    """`hl7.fhir.r4.core#4.0.1` built from HAPI's R4 definitions jar, and the R4 extensions the output uses."""
    extensions = root / "r4-extensions"
    if not all((extensions / name).is_file() for name in R4_EXTENSIONS):
        pack = package_dir(root, "hl7.fhir.uv.extensions.r4", "5.3.0-ballot-tc1") / "package"
        extensions.mkdir(exist_ok=True)
        for name in R4_EXTENSIONS:
            shutil.copyfile(pack / name, extensions / name)
    target = package_dir(root, "hl7.fhir.r4.core", "4.0.1")
    if (target / "package" / "package.json").is_file():
        return
    mvn, java = _require("mvn"), _require("java")
    group, artifact, version = R4_DEFINITIONS
    with tempfile.TemporaryDirectory(dir=root) as work:
        work_path = Path(work)
        (work_path / "settings.xml").write_text(_SETTINGS_XML)
        _run(
            [
                mvn,
                "-q",
                "-B",
                "-s",
                "settings.xml",
                "dependency:copy",
                f"-Dartifact={group}:{artifact}:{version}",
                "-DoutputDirectory=.",
            ],
            work_path,
        )
        built = work_path / "built"
        _run(
            [
                java,
                "-cp",
                str(root / "lib" / "*"),
                str(R4_PACKAGE_SOURCE),
                f"{artifact}-{version}.jar",
                str(built / "package"),
            ],
            work_path,
        )
        shutil.rmtree(target, ignore_errors=True)
        built.rename(target)


def install(root: Path | None = None) -> Path:
    """Install (or find) the jars and packages; returns the cache directory. Raises UnavailableError."""
    root = root or cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    _require("java")
    _install_jars(root)
    _install_packages(root)
    _install_r4(root)
    return root


def validate(definitions: list[Path], files: list[Path], root: Path | None = None, release: str = "r5") -> list[Issue]:
    """Validate each file (JSON) against FHIR `release` (r5 or r4) and the profiles it claims, with `definitions`
    (folders of conformance resources, e.g. an IG's StructureDefinitions) loaded. One JVM, one engine load."""
    root = root or cache_dir()
    fhir = RELEASES[release]
    java = _require("java")
    if not (root / "lib" / ".installed").is_file():
        raise UnavailableError(f"the validator is not installed in {root} (run install() first)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("".join(f"{f}\n" for f in files))
    try:
        command = [
            java,
            f"-Duser.home={root}",
            "-Djava.awt.headless=true",
            "-cp",
            str(root / "lib" / "*"),
            str(JAVA_SOURCE),
            fhir.core,
            listing.name,
            *(str(root / folder) for folder in fhir.folders),
            *map(str, definitions),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        os.unlink(listing.name)
    if done.returncode != 0:
        raise RuntimeError(f"validator failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return [Issue(**json.loads(line)) for line in done.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        try:
            print(f"HL7 FHIR validator ready in {install()}")
        except UnavailableError as exc:
            print(f"HL7 FHIR validator unavailable, profile tests will skip: {exc}", file=sys.stderr)
            return 1 if os.environ.get("SR2FHIR_REQUIRE_VALIDATOR") == "1" else 0
        return 0
    if argv[:1] == ["validate"] and len(argv) >= 3:
        for issue in validate([Path(argv[1])], [Path(a) for a in argv[2:]]):
            print(json.dumps(asdict(issue)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
