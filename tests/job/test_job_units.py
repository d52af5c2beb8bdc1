"""The job's pure parts, without Spark: configuration merging, the mapping worker, redaction."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from jobs.archives import is_archive
from jobs.config import ConfigError, load_config
from jobs.mapping import Mapper, MapperSettings
from jobs.staging import KINDS, OUTPUT_SCHEMA, RECORD_FIELDS, RECORD_TYPE
from sr2fhir_core import DocumentRecord, MappingOptions, dumps_json, map_sr
from sr2fhir_synth import write_sample_corpus


def test_defaults_then_files_then_set_then_flags(tmp_path: Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("input:\n  max_file_bytes: 1000\nspark:\n  settings:\n    spark.custom.key: 7\n")
    config = load_config(
        inputs=["a"],
        output="out/",
        conf_files=[user],
        overrides=["input.max_file_bytes=2000", "spark.settings.spark.sql.shuffle.partitions=3"],
        table_format="parquet",
        full_refresh=True,
    )
    assert config.input.max_file_bytes == 2000
    assert config.spark.settings["spark.custom.key"] == "7"
    assert config.spark.settings["spark.sql.shuffle.partitions"] == "3"
    assert config.spark.settings["spark.sql.files.openCostInBytes"] == "102400"  # the default survives
    assert (config.out.table_format, config.full_refresh, config.output) == ("parquet", True, "out")
    assert config.mapping == MappingOptions()


@pytest.mark.parametrize(
    "override",
    [
        "input.max_bytes=1",
        "output.table_format=orc",
        "output.partition_by=[code]",
        "mapping.default_timezone=nowhere",
        "incremental.removed_files=forget",
        "incremental.merge_scope_literals=-1",
        "maintenance.vacuum_retention_hours=-1",
        "maintenance.export_retention_days=-1",
        "maintenance.zorder_by=source_file",
        "fhir.export_url_base=exports",
        "input.max_seconds_per_input=0",
        "nokey",
    ],
)
def test_bad_configuration_is_an_error(override: str) -> None:
    with pytest.raises(ConfigError):
        load_config(inputs=["a"], output="o", overrides=[override])


def test_a_repeated_key_in_a_configuration_file_is_an_error(tmp_path: Path) -> None:
    """Plain YAML keeps a repeated key's last value without a word; a configuration file must not."""
    user = tmp_path / "user.yaml"
    user.write_text("input:\n  max_file_bytes: 1000\n  max_file_bytes: 2000\n")
    with pytest.raises(ConfigError, match=r"repeated keys \['max_file_bytes'\] in the mapping at line 2"):
        load_config(inputs=["a"], output="o", conf_files=[user])


def test_maintenance_needs_no_inputs_and_keeps_its_defaults() -> None:
    config = load_config(output="o", need_inputs=False, overrides=["maintenance.vacuum_retention_hours=null"])
    assert config.maintenance.vacuum_retention_hours is None
    assert config.maintenance.zorder and not config.maintenance.auto_compact
    assert config.maintenance.export_retention_days is None  # exports are kept unless asked
    with pytest.raises(ConfigError, match="input"):
        load_config(output="o")


def test_input_folders_are_the_inputs_that_name_a_folder(tmp_path: Path) -> None:
    """Removal is judged only under inputs that name a place: folders, not files, globs or missing paths."""
    from jobs.run.removals import input_folders

    class LocalFS:  # the two HadoopFS calls input_folders makes, on the local file system
        def qualify(self, uri: str) -> str:
            return "file:" + str(Path(uri).absolute())

        def is_dir(self, uri: str) -> bool:
            return Path(uri).is_dir()

    (tmp_path / "lake" / "a").mkdir(parents=True)
    (tmp_path / "lake" / "b.dcm").write_bytes(b"")
    inputs = [f"{tmp_path}/lake/", f"{tmp_path}/lake/b.dcm", f"{tmp_path}/lake/*/", f"{tmp_path}/gone", "lake/a"]
    folders = input_folders(LocalFS(), tuple(inputs))  # type: ignore[arg-type]
    assert folders == [f"file:{tmp_path}/lake/"]


def test_output_schema_takes_the_record_columns_from_the_core() -> None:
    import dataclasses

    names = [f.name for f in dataclasses.fields(DocumentRecord) if f.name != "source_path"]
    assert [f.name for f in RECORD_FIELDS] == names
    assert set(names) <= {f.name for f in RECORD_TYPE}
    assert set(OUTPUT_SCHEMA.names) >= set(KINDS)


def _batch(rows: list[tuple[str, bytes | None]]) -> pa.RecordBatch:
    when = datetime(2024, 1, 1)
    return pa.RecordBatch.from_pylist(
        [{"source_file": p, "size": len(c or b""), "modification_time": when, "content": c} for p, c in rows]
    )


def test_mapper_gives_one_row_per_input_and_never_raises(tmp_path: Path) -> None:
    reports = [p for p in write_sample_corpus(tmp_path, count=2) if map_sr(p).mapped]
    data = reports[0].read_bytes()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("x/report", data)
        archive.writestr("big", b"\0" * 100_000)
        archive.writestr("blank", b"")
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as archive:
        info = tarfile.TarInfo("member.dcm")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        archive.addfile(tarfile.TarInfo("blank.dcm"), io.BytesIO(b""))
    assert is_archive(zipped.getvalue()[:512]) and is_archive(tarred.getvalue()[:512]) and not is_archive(data[:512])
    mapper = Mapper(MapperSettings(options=MappingOptions(), max_file_bytes=50_000, max_archive_bytes=1 << 30))
    out = pa.Table.from_batches(
        list(
            mapper(
                iter(
                    [
                        _batch(
                            [
                                ("file:/plain", data),
                                ("file:/a.zip", zipped.getvalue()),
                                ("file:/b.tar", tarred.getvalue()),
                                ("file:/cut.zip", zipped.getvalue()[:40]),
                                ("file:/large", None),
                                ("file:/text", b"hello"),
                                ("file:/upload-failed.dcm", b""),
                            ]
                        )
                    ]
                )
            )
        )
    )
    records = {r["record"]["source_path"]: {**r, **r["record"]} for r in out.to_pylist() if r["kind"] == "record"}
    assert {p: (r["status"], r["reason"]) for p, r in records.items()} == {
        "file:/plain": ("mapped", None),
        "file:/a.zip!x/report": ("mapped", None),
        "file:/a.zip!big": ("rejected", "too_large"),
        "file:/b.tar!member.dcm": ("mapped", None),
        "file:/cut.zip": ("failed", "archive_error"),
        "file:/large": ("rejected", "too_large"),
        "file:/text": ("rejected", "not_dicom"),
        "file:/upload-failed.dcm": ("rejected", "empty_file"),
        "file:/a.zip!blank": ("rejected", "empty_file"),
        "file:/b.tar!blank.dcm": ("rejected", "empty_file"),
    }
    plain = records["file:/plain"]
    expected = map_sr(data, source_path="file:/plain")
    expected_json = sorted(dumps_json(r).decode() for r in expected.resources)
    for source_file in ("file:/plain", "file:/a.zip"):
        rows = out.filter(pc.equal(out["source_file"], source_file))
        resources = [r["resource"] for r in rows.to_pylist() if r["kind"] == "resource"]
        assert sorted(r["json"] for r in resources) == expected_json
        measurements = [r["measurements"] for r in rows.to_pylist() if r["kind"] == "measurements"]
        assert [m["observation_id"] for m in measurements] == [
            m["observation_id"] for m in expected.rows["measurements"]
        ]
        assert {r["content_sha256"] for r in rows.to_pylist() if r["kind"] != "record"} == {plain["content_sha256"]}
    assert len(expected_json) == plain["resources"]
    assert records["file:/a.zip!x/report"]["source_file"] == "file:/a.zip"
    assert records["file:/a.zip!x/report"]["content_sha256"] == plain["content_sha256"]
    # One kind per row: the other kinds' columns are null.
    for row in out.to_pylist():
        assert [kind for kind in KINDS if row[kind] is not None] == [row["kind"]]


def test_run_summary_configuration_has_no_secrets() -> None:
    from jobs.run.summary import redacted

    tree = {
        "spark": {
            "settings": {
                "spark.hadoop.fs.s3a.secret.key": "s",
                "spark.hadoop.fs.azure.sas.x": "t",
                "spark.hadoop.fs.s3a.aws.credentials.provider": "p",
                "spark.sql.a": "1",
            }
        }
    }
    assert redacted(tree) == {
        "spark": {
            "settings": {
                "spark.hadoop.fs.s3a.secret.key": "***",
                "spark.hadoop.fs.azure.sas.x": "***",
                "spark.hadoop.fs.s3a.aws.credentials.provider": "p",
                "spark.sql.a": "1",
            }
        }
    }


def test_a_large_archive_comes_out_in_bounded_batches() -> None:
    from jobs.mapping import FLUSH_INPUTS

    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        for i in range(FLUSH_INPUTS + 10):
            archive.writestr(f"note-{i}.txt", b"not dicom")
    done: list[int] = []
    mapper = Mapper(
        MapperSettings(options=MappingOptions(), max_file_bytes=1000, max_archive_bytes=1 << 30), progress=done.append
    )
    batches = list(mapper(iter([_batch([("file:/many.zip", zipped.getvalue())])])))
    assert [b.num_rows for b in batches] == [FLUSH_INPUTS, 10] == done


def test_a_large_report_comes_out_as_bounded_rows_and_batches() -> None:
    """A report of ~5,000 content items gives thousands of rows: no row holds more than one resource or
    table row, no batch more than FLUSH_ROWS rows."""
    from jobs.mapping import FLUSH_ROWS
    from sr2fhir_synth import random_spec, write_sr

    data = write_sr(random_spec(7, target_items=5000))
    expected = map_sr(data, source_path="file:/large.dcm")
    mapper = Mapper(MapperSettings(options=MappingOptions(), max_file_bytes=len(data), max_archive_bytes=1 << 30))
    batches = list(mapper(iter([_batch([("file:/large.dcm", data)])])))
    assert max(b.num_rows for b in batches) <= FLUSH_ROWS
    out = pa.Table.from_batches(batches)
    kinds = Counter(out["kind"].to_pylist())
    assert kinds == {
        "record": 1,
        "resource": len(expected.resources),
        "measurements": len(expected.rows["measurements"]),
        "qualitative_evaluations": len(expected.rows["qualitative_evaluations"]),
    }
    assert kinds["resource"] > 1000
    largest = max(len(dumps_json(r)) for r in expected.resources)
    lengths = pc.binary_length(out["resource"].combine_chunks().field("json"))
    assert pc.max(lengths).as_py() == largest


def test_ndjson_file_plan_bounds_every_file_and_keeps_every_resource() -> None:
    from jobs.sinks.ndjson import FINE_BUCKETS, plan_files

    fine = {
        # 10 ids, bound 4: 3 buckets (fine bucket modulo 3); bucket 0 got 5 ids by hashing and is cut in two files.
        "Observation": {0: 5, 1: 4, 2: 1},
        # 3 ids, bound 2: 2 buckets; fine buckets 1 and 3 fall in bucket 1.
        "Patient": {0: 1, 1: 1, 3: 1},
        "Device": {7: 1},
    }
    plan = plan_files(fine, 4)
    assert plan.buckets == {"Device": 1, "Observation": 3, "Patient": 1}
    assert plan.files["Observation"] == [(0, 4), (0, 1), (1, 4), (2, 1)]
    assert plan.files["Device"] == [(0, 1)]
    assert plan_files(fine, 2).files["Patient"] == [(0, 1), (1, 2)]
    # More buckets than there are fine buckets: the count is capped, the files still bounded.
    huge = plan_files({"Observation": dict.fromkeys(range(FINE_BUCKETS), 3)}, 1)
    assert huge.buckets["Observation"] == FINE_BUCKETS
    assert len(huge.files["Observation"]) == 3 * FINE_BUCKETS
    assert {count for _, count in huge.files["Observation"]} == {1}


def test_ndjson_file_bound_must_be_positive() -> None:
    assert load_config(inputs=["a"], output="o").fhir.max_resources_per_file == 100_000
    with pytest.raises(ConfigError, match="max_resources_per_file"):
        load_config(inputs=["a"], output="o", overrides=["fhir.max_resources_per_file=0"])


def test_pending_files_deleted_before_they_were_read_stay_pending() -> None:
    from jobs.run.recovery import Pending, Reconciliation
    from jobs.sources.inputs import Listed

    listed = [Listed(f"file:/lake/{name}", 10, 0, f"file:/lake/{name}") for name in ("a.dcm", "b.dcm")]
    reconciliation = Reconciliation(to_map=listed, purged=["file:/lake/c.dcm"], kept=["file:/lake/z.dcm"])
    pending = Pending(files=frozenset(["file:/lake/a.dcm", "file:/lake/b.dcm", "file:/lake/c.dcm", "file:/lake/z.dcm"]))

    kept = reconciliation.keeping(["file:/lake/b.dcm", "file:/lake/new.dcm"])
    assert kept.to_map == listed[:1] and kept.kept == ["file:/lake/b.dcm", "file:/lake/z.dcm"]
    assert kept.purged == reconciliation.purged
    assert kept.counts(pending) == {"pending": 4, "mapped": 1, "deleted": 1, "kept": 2}
    assert reconciliation.keeping(["file:/lake/new.dcm"]) is reconciliation


def test_manifest_urls_are_where_an_importing_server_fetches_the_files() -> None:
    from jobs.run.sinks import export_urls

    config = load_config(inputs=["a"], output="o", overrides=["fhir.export_url_base=https://files.example.org/out/"])
    assert config.fhir.export_url_base == "https://files.example.org/out"
    url = export_urls("s3a://lake/out", config.fhir.export_url_base)
    assert url is not None
    assert url("s3a://lake/out/fhir/r1/Observation.00000.ndjson") == (
        "https://files.example.org/out/fhir/r1/Observation.00000.ndjson"
    )
    with pytest.raises(ValueError, match="outside"):
        url("s3a://elsewhere/Observation.00000.ndjson")
    assert export_urls("s3a://lake/out", None) is None  # the files' own URLs
    assert load_config(inputs=["a"], output="o").input.max_seconds_per_input == 60
