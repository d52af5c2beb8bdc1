"""The input size limit a session can always map (jobs/limits.py), and what the configuration says of it."""

from __future__ import annotations

import logging

import pytest

from jobs import limits
from jobs.config import load_config
from jobs.errors import ConfigError
from jobs.limits import MIB, Memory


def test_memory_settings_read_as_spark_reads_them() -> None:
    assert limits.parse_size("2g") == 2 << 30
    assert limits.parse_size("512m") == limits.parse_size("512") == 512 * MIB
    assert limits.parse_size("1024k") == MIB
    with pytest.raises(ValueError, match="not a memory size"):
        limits.parse_size("lots")


def test_the_limit_is_the_heap_over_the_bytes_an_input_needs_per_task() -> None:
    default = Memory(heap_bytes=2 << 30, concurrent_tasks=2, setting="spark.driver.memory")
    assert default.max_input_bytes == (2 << 30) // (limits.HEAP_BYTES_PER_INPUT_BYTE * 2) // MIB * MIB
    assert 32 * MIB < default.max_input_bytes < 64 * MIB  # a default local session: what the measurements allow
    one_task = Memory(heap_bytes=2 << 30, concurrent_tasks=1, setting="spark.driver.memory")
    assert one_task.max_input_bytes >= 2 * default.max_input_bytes - MIB
    assert Memory(heap_bytes=MIB, concurrent_tasks=8, setting="x").max_input_bytes == MIB  # never nothing


def test_auto_takes_the_sessions_limit_and_a_larger_number_is_kept_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = Memory(heap_bytes=2 << 30, concurrent_tasks=2, setting="spark.driver.memory")
    with caplog.at_level(logging.INFO, logger="sr2fhir"):
        assert limits.max_file_bytes(None, memory) == memory.max_input_bytes
        assert limits.max_file_bytes(MIB, memory) == MIB
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert limits.max_file_bytes(256 * MIB, memory) == 256 * MIB
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "raise spark.driver.memory" in warning[0]


def test_the_configuration_takes_auto_or_a_number_of_bytes() -> None:
    assert load_config(inputs=["x"], output="o").input.max_file_bytes is None
    assert load_config(inputs=["x"], output="o", overrides=["input.max_file_bytes=1000"]).input.max_file_bytes == 1000
    for wrong in ("0", "-5", "lots", "true"):
        with pytest.raises(ConfigError, match=r"input\.max_file_bytes must be auto or a number of bytes"):
            load_config(inputs=["x"], output="o", overrides=[f"input.max_file_bytes={wrong}"])
    with pytest.raises(RuntimeError, match="auto until a run resolves it"):
        _ = load_config(inputs=["x"], output="o").input.file_limit
