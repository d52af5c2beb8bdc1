"""Every way a configuration can be wrong is a ConfigError with one line saying what and where, and the commands
exit 2 for it (not a traceback and status 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.cli import main
from jobs.config import load_config
from jobs.errors import ConfigError, ExitStatus, failure_line


def test_a_missing_or_broken_configuration_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(inputs=["x"], output="o", conf_files=[tmp_path / "none.yaml"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("input:\n  max_file_bytes: [1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML: .* at line 3"):
        load_config(inputs=["x"], output="o", conf_files=[broken])


def test_a_set_value_yaml_cannot_read_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--set input.path_glob_filter: the value is not valid YAML .*quote it"):
        load_config(inputs=["x"], output="o", overrides=["input.path_glob_filter=*.dcm"])
    assert load_config(inputs=["x"], output="o", overrides=["input.path_glob_filter='*.dcm'"]).input.path_glob_filter


def test_the_run_command_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "--input", "x", "--output", str(tmp_path / "o"), "--set", "input.path_glob_filter=*.dcm"])
    assert status == ExitStatus.USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sr2fhir run: --set input.path_glob_filter:")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "spark_says",
    [
        # Spark 4.2 / delta-spark 4.4 on a session without the extension and catalog (a schema'd CREATE TABLE, and
        # a write), and without the jars: each text as they print it.
        "[CANNOT_CREATE_DATA_SOURCE_TABLE.EXTERNAL_METADATA_UNSUPPORTED] Failed to create data source table "
        "`delta`.`/out/tables/documents`: provider 'delta' does not support external metadata but a schema is "
        "provided. Please remove the schema when creating the table. SQLSTATE: 42KDE",
        "[DELTA_CONFIGURE_SPARK_SESSION_WITH_EXTENSION_AND_CATALOG] This Delta operation requires the SparkSession "
        "to be configured with the\nDeltaSparkSessionExtension and the DeltaCatalog.",
        "An error occurred while calling o31.save.\n: org.apache.spark.SparkClassNotFoundException: "
        "[DATA_SOURCE_NOT_FOUND] Failed to find the data source: delta. Make sure the provider name is correct",
    ],
)
def test_a_session_without_delta_is_named_with_the_settings_it_lacks(spark_says: str) -> None:
    line = failure_line(RuntimeError(spark_says))
    assert line.startswith("the Spark session the job was given has no Delta support")
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in line
    assert "output.table_format: parquet" in line
    assert "\n" not in line
    assert failure_line(RuntimeError("[DATA_SOURCE_NOT_FOUND] Failed to find the data source: avro.")).startswith(
        "RuntimeError"
    )
