"""Job configuration: `conf/sr2fhir.yaml` (the documented defaults), a user's YAML merged over it, then
`--set dotted.key=value` and the command-line flags. One typed, frozen `JobConfig` comes out; unknown keys
are an error so a typo never passes silently."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sr2fhir_core import MappingOptions

from .errors import ConfigError

DEFAULT_CONF = "sr2fhir.yaml"
"""The documented defaults, package data of `jobs`: `conf/sr2fhir.yaml` in a checkout (jobs/sr2fhir.yaml links to
it), a copy in a wheel. Read as a resource, not a file path: the package may be imported from a zip (a package
on spark-submit's --py-files)."""
TABLE_FORMATS = ("delta", "parquet")
REMOVED_FILES = ("delete", "keep")
"""`incremental.removed_files`: what a run does with ledger files that are gone from a listed input folder."""
SECTIONS = ("spark", "input", "incremental", "output", "fhir", "maintenance", "mapping")


@dataclass(frozen=True, slots=True)
class SparkConfig:
    master: str
    app_name: str
    delta_package: str
    s3_package: str
    jar_excludes: tuple[str, ...]
    class_archive_dir: str | None
    jar_cache_dir: str | None
    quiet_jvm_logs: bool
    no_executor_timeout_seconds: float | None
    """How long a run's Spark jobs may wait with no executor before the run fails (`jobs/run/executors.py`)."""
    settings: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class InputConfig:
    path_glob_filter: str | None
    max_file_bytes: int | None
    """None: `auto`, what the session's memory allows (jobs/limits.py); a run resolves it before it starts."""
    max_archive_bytes: int
    max_seconds_per_input: float | None
    """The mapping's time budget per input (`map_sr(time_limit=...)`): past it, `failed/timeout`. None: none."""

    @property
    def file_limit(self) -> int:
        """`max_file_bytes` as a run resolved it for its session (`jobs.run.with_limits`)."""
        if self.max_file_bytes is None:
            raise RuntimeError("input.max_file_bytes is auto until a run resolves it for its session")
        return self.max_file_bytes


@dataclass(frozen=True, slots=True)
class IncrementalConfig:
    retry_failed: bool
    removed_files: str
    quarantine_after: int


@dataclass(frozen=True, slots=True)
class OutputConfig:
    table_format: str
    partition_by: tuple[str, ...]
    progress_interval_seconds: float
    lock_expiry_seconds: float
    umask: str | None
    """Octal, e.g. "027"; None: the process's umask alone (`spark.session.umask_mode`)."""
    catalog_schema: str | None = None
    """`schema` or `catalog.schema` the Delta tables are registered in after each run (`jobs/catalog.py`)."""


@dataclass(frozen=True, slots=True)
class FhirConfig:
    max_resources_per_file: int
    export_url_base: str | None = None
    """Where an importing server fetches the output from (https or object-store URL of the output folder):
    the manifest's `url`s are this plus each file's path under the output. None: the files' own URLs."""


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    auto_compact: bool
    zorder: bool
    vacuum_retention_hours: int | None
    export_retention_days: int | None


@dataclass(frozen=True, slots=True)
class JobConfig:
    inputs: tuple[str, ...]
    """Input URIs: files, folders (read recursively) or glob patterns, on any Hadoop file system."""
    input_lists: tuple[str, ...]
    """URIs of text files listing one input URI per line (for lakes too large to list)."""
    output: str
    full_refresh: bool
    retry_quarantined: bool
    """Map the quarantined inputs again (`--retry-quarantined`)."""
    spark: SparkConfig
    input: InputConfig
    incremental: IncrementalConfig
    out: OutputConfig
    fhir: FhirConfig
    maintenance: MaintenanceConfig
    mapping: MappingOptions
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    """The merged YAML, recorded in the run summary."""

    @property
    def uris(self) -> tuple[str, ...]:
        return (*self.inputs, *self.input_lists, self.output)


def _merge(base: dict, override: Mapping, where: str = "") -> dict:
    merged = dict(base)
    for key, value in override.items():
        if key not in base:
            raise ConfigError(f"unknown configuration key {where}{key}")
        # Free-form maps (Spark settings, code systems) take new keys; sections do not.
        if isinstance(base[key], dict) and isinstance(value, Mapping) and key not in ("settings", "code_systems"):
            merged[key] = _merge(base[key], value, f"{where}{key}.")
        elif isinstance(base[key], dict) and isinstance(value, Mapping):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def _set(tree: dict, assignment: str) -> dict:
    """Apply one `dotted.key=value` (value parsed as YAML: numbers, booleans, lists)."""
    key, sep, text = assignment.partition("=")
    if not sep:
        raise ConfigError(f"--set expects key=value, not {assignment!r}")
    parts = key.strip().split(".")
    if parts[:2] == ["spark", "settings"] and len(parts) > 2:
        # Spark keys contain dots themselves: everything after spark.settings. is one key.
        parts = ["spark", "settings", ".".join(parts[2:])]
    override: dict = {}
    node = override
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    try:
        node[parts[-1]] = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: the value is not valid YAML ({_yaml_problem(exc)}); quote it") from exc
    return _merge(tree, override)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML whose mappings may not repeat a key: plain YAML keeps the last value, silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise ConfigError(f"repeated keys {repeated} in the mapping at line {node.start_mark.line + 1}")
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from exc
    return _parse_yaml(text, path)


def default_tree() -> Any:
    """The default configuration (DEFAULT_CONF), wherever the package is imported from."""
    resource = resources.files("jobs").joinpath(DEFAULT_CONF)
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the default configuration {resource}: {exc.strerror or exc}") from exc
    return _parse_yaml(text, resource)


def _parse_yaml(text: str, path: object) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, in one line."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or type(exc).__name__}{where}"


def _flag(key: str) -> Callable[[object], bool]:
    """A yes/no key: YAML's true or false only (bool() would take any string as true)."""

    def convert(value: object) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, not {value!r}")
        return value

    return convert


def _section(cls, values: Mapping, name: str, **convert):
    names = {f.name for f in fields(cls)}
    extra = set(values) - names
    if extra:
        raise ConfigError(f"unknown keys in {name}: {sorted(extra)}")
    missing = names - set(values)
    if missing:
        raise ConfigError(f"missing keys in {name}: {sorted(missing)}")
    return cls(**{k: convert.get(k, lambda v: v)(v) for k, v in values.items()})


def load_config(
    *,
    inputs: Iterable[str] = (),
    input_lists: Iterable[str] = (),
    output: str,
    conf_files: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
    table_format: str | None = None,
    full_refresh: bool = False,
    retry_quarantined: bool = False,
    need_inputs: bool = True,
) -> JobConfig:
    """`need_inputs` false: a command that works on the output alone (`sr2fhir maintain`)."""
    tree = default_tree()
    for conf_file in conf_files:
        user = _read_yaml(conf_file) or {}
        if not isinstance(user, Mapping):
            raise ConfigError(f"{conf_file}: expected a mapping at the top level")
        tree = _merge(tree, user)
    for assignment in overrides:
        tree = _set(tree, assignment)
    if table_format is not None:
        tree = _merge(tree, {"output": {"table_format": table_format}})
    if set(tree) != set(SECTIONS):
        raise ConfigError(f"configuration sections must be {', '.join(SECTIONS)}: {sorted(tree)}")

    out = _section(
        OutputConfig,
        tree["output"],
        "output",
        partition_by=tuple,
        progress_interval_seconds=float,
        lock_expiry_seconds=float,
        umask=_octal_umask,
        catalog_schema=_catalog_schema,
    )
    if out.lock_expiry_seconds < 10:
        raise ConfigError(f"output.lock_expiry_seconds must be at least 10, not {out.lock_expiry_seconds:g}")
    if out.table_format not in TABLE_FORMATS:
        raise ConfigError(f"output.table_format must be one of {TABLE_FORMATS}, not {out.table_format!r}")
    if out.catalog_schema is not None and out.table_format != "delta":
        raise ConfigError(
            "output.catalog_schema registers Delta tables only: a catalog's Parquet table keeps the partitions and"
            " columns it was created with, so it would miss a later run's new study years and new columns until"
            " repaired; use output.table_format delta, or set output.catalog_schema to null"
        )
    unknown_partitions = set(out.partition_by) - {"study_year"}
    if unknown_partitions:
        raise ConfigError(f"output.partition_by supports study_year or nothing, not {sorted(unknown_partitions)}")
    fhir = _section(FhirConfig, tree["fhir"], "fhir", max_resources_per_file=int, export_url_base=_url_base)
    if fhir.max_resources_per_file < 1:
        raise ConfigError(f"fhir.max_resources_per_file must be at least 1, not {fhir.max_resources_per_file}")
    incremental = _section(
        IncrementalConfig,
        tree["incremental"],
        "incremental",
        retry_failed=_flag("incremental.retry_failed"),
        quarantine_after=int,
    )
    maintenance = _section(
        MaintenanceConfig,
        tree["maintenance"],
        "maintenance",
        auto_compact=_flag("maintenance.auto_compact"),
        zorder=_flag("maintenance.zorder"),
        vacuum_retention_hours=lambda v: None if v is None else int(v),
        export_retention_days=lambda v: None if v is None else int(v),
    )
    for key in ("vacuum_retention_hours", "export_retention_days"):
        if (value := getattr(maintenance, key)) is not None and value < 0:
            raise ConfigError(f"maintenance.{key} must be 0 or more, not {value}")
    if incremental.quarantine_after < 1:
        raise ConfigError(f"incremental.quarantine_after must be at least 1, not {incremental.quarantine_after}")
    if incremental.removed_files not in REMOVED_FILES:
        raise ConfigError(
            f"incremental.removed_files must be one of {REMOVED_FILES}, not {incremental.removed_files!r}"
        )
    inputs = tuple(inputs)
    input_lists = tuple(input_lists)
    if need_inputs and not inputs and not input_lists:
        raise ConfigError("give at least one input URI or input list")
    try:
        mapping = MappingOptions(**tree["mapping"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"mapping: {exc}") from exc
    return JobConfig(
        inputs=inputs,
        input_lists=input_lists,
        output=output.rstrip("/"),
        full_refresh=full_refresh,
        retry_quarantined=retry_quarantined,
        spark=_section(
            SparkConfig,
            tree["spark"],
            "spark",
            jar_excludes=tuple,
            quiet_jvm_logs=_flag("spark.quiet_jvm_logs"),
            no_executor_timeout_seconds=_no_executor_timeout,
            settings=lambda s: {k: _spark_value(v) for k, v in (s or {}).items()},
        ),
        input=_section(
            InputConfig,
            tree["input"],
            "input",
            max_file_bytes=_bytes_or_auto,
            max_archive_bytes=int,
            max_seconds_per_input=_seconds_or_none,
        ),
        incremental=incremental,
        out=out,
        fhir=fhir,
        maintenance=maintenance,
        mapping=mapping,
        raw=tree,
    )


def _octal_umask(value: object) -> str | None:
    """A umask as octal digits: "027", or 027 unquoted (which YAML reads as the octal number 23)."""
    if value is None:
        return None
    text = f"{value:03o}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if not (3 <= len(text) <= 4 and all(c in "01234567" for c in text)):
        raise ConfigError(f'output.umask must be octal digits such as "027", or null, not {value!r}')
    return text


CATALOG_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
"""`schema` or `catalog.schema`: plain identifiers, which every catalog (Hive, Glue, Unity) takes unquoted."""


def _catalog_schema(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not CATALOG_SCHEMA.fullmatch(value):
        raise ConfigError(
            "output.catalog_schema must be a schema name or catalog.schema (letters, digits, underscores), or null,"
            f" not {value!r}"
        )
    return value


def _no_executor_timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 10:
        raise ConfigError(
            f"spark.no_executor_timeout_seconds must be a number of seconds (at least 10) or null, not {value!r}"
        )
    return float(value)


def _url_base(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(f"fhir.export_url_base must be a URL (https://..., s3://...) or null, not {value!r}")
    return value.rstrip("/")


def _seconds_or_none(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"input.max_seconds_per_input must be a positive number of seconds or null, not {value!r}")
    return float(value)


def _bytes_or_auto(value: object) -> int | None:
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"input.max_file_bytes must be auto or a number of bytes, not {value!r}")
    return value


def _spark_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
