"""Inputs that once defeated "one bad file never fails a job" (issue 17), each built here from a generated report:
every one gets a typed verdict from `map_sr`, the same from both readers."""

from __future__ import annotations

import io
import threading
import time
import warnings

import pydicom
import pytest

from sr2fhir_core import MappingOptions, MappingResult, dumps_json, map_sr
from sr2fhir_core.errors import SRRejected
from sr2fhir_core.options import Reader
from sr2fhir_synth import random_spec, write_sr

READERS = [Reader.AUTO, Reader.PYDICOM]


def _report(seed: int = 3) -> bytes:
    return write_sr(random_spec(seed=seed))


def _map(data: bytes, reader: Reader) -> MappingResult:
    return map_sr(data, MappingOptions(reader=reader))


def _with_charset(data: bytes, value: bytes) -> bytes:
    """`data` with a top-level Specific Character Set of `value` (any bytes; pydicom will not write a value it
    cannot convert, so a placeholder of the same length is written and replaced)."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    placeholder = "ISO_IR 144"
    assert len(value) == len(placeholder)
    dataset.SpecificCharacterSet = placeholder
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    written = buffer.getvalue()
    assert written.count(placeholder.encode()) == 1
    return written.replace(placeholder.encode(), value)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("value", [b"ISO_IR\x00100", b"\x00SO_IR 100", b"ISO_IR\x00192"])
def test_nul_inside_specific_character_set_is_corrupt(reader: Reader, value: bytes) -> None:
    """pydicom cannot convert the value (codecs.lookup refuses a NUL) and fails the read; the fast reader let the
    ValueError out (failed/internal_error). Both now say rejected/corrupt."""
    result = _map(_with_charset(_report(), value), reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "corrupt")


@pytest.mark.parametrize("reader", READERS)
def test_nul_padding_after_specific_character_set_is_fine(reader: Reader) -> None:
    result = _map(_with_charset(_report(), b"ISO_IR 1\x00\x00"), reader)
    assert result.record.status.value == "mapped"


# --- Numeric Values outside what the outputs hold ---------------------------------------------------------

_PLACEHOLDER_NUMBER = "1.234567890123456789"


def _with_numeric_value(text: str) -> bytes:
    """A generated report whose first NUM has Numeric Value `text` (written as is, padded to an even length)."""
    dataset = pydicom.dcmread(io.BytesIO(write_sr(random_spec(seed=1))))
    first = next(element for element in dataset.iterall() if element.tag == 0x0040A30A)
    first.value = _PLACEHOLDER_NUMBER
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's: the placeholder is longer than a DS may be
        dataset.save_as(buffer, enforce_file_format=True)
    written = buffer.getvalue()
    assert len(text) <= len(_PLACEHOLDER_NUMBER) and written.count(_PLACEHOLDER_NUMBER.encode()) == 1
    return written.replace(_PLACEHOLDER_NUMBER.encode(), text.ljust(len(_PLACEHOLDER_NUMBER)).encode())


def _first_measurement(result: MappingResult, text: str) -> tuple[dict, dict]:
    """The table row of the NUM whose Numeric Value is `text`, and its Observation."""
    (row,) = [row for row in result.rows["measurements"] if row["value_text"] == text]
    (observation,) = [r for r in result.resources if r["id"] == row["observation_id"]]
    return row, observation


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e400", None),  # was FHIR 1E+400 and a null table value
        ("-1e400", None),
        ("1e-400", None),  # was 0.0 in the table
        ("1.8e308", None),
        ("12345678901234567890", None),  # more integer digits than a FHIR decimal has
        ("0.123456789012345678", None),  # more fraction digits than a FHIR decimal has
        ("1.7e308", "1.7E+308"),
        ("4.9e-324", "4.9E-324"),  # subnormal: a float still holds it
        ("-0", "-0"),
        ("+12.5", "12.5"),
    ],
)
def test_numbers_outside_what_both_outputs_hold_are_absent_in_both(
    reader: Reader, text: str, expected: str | None
) -> None:
    """One rule for FHIR and the table (sr2fhir_core.numbers): the value is in both, or absent in both with
    a value_absent warning; the text stays in value_text either way."""
    result = _map(_with_numeric_value(text), reader)
    assert result.mapped
    row, observation = _first_measurement(result, text)
    warned = [w for w in result.warnings if w.code == "value_absent" and "finite decimal" in w.message]
    if expected is None:
        assert row["value"] is None
        assert "valueQuantity" not in observation
        assert observation["dataAbsentReason"]["coding"][0]["code"] == "error"
        assert len(warned) == 1
    else:
        assert str(observation["valueQuantity"]["value"]) == expected
        assert row["value"] == float(text)
        assert not warned


# --- messages name attributes and reasons, never values from the file -------------------------------------

CANARY = "CANARY"


def _write(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _canary_inputs() -> dict[str, bytes]:
    """Reports whose values on every message path are canaries: what each message could quote."""
    source = write_sr(random_spec(seed=1))

    def read() -> pydicom.Dataset:
        return pydicom.dcmread(io.BytesIO(source))

    inputs = {}
    dataset = read()
    dataset.ConceptNameCodeSequence[0].CodeValue = "424242"  # a TID 1500 root concept that is not 126000
    for element in dataset.iterall():
        if element.tag == 0x00080104:  # every Code Meaning
            element.value = f"{CANARY} meaning"
    designators = [e for e in dataset.iterall() if e.tag == 0x00080102 and e.value == "SCT"]
    for element in designators:
        element.value = f"99{CANARY}"  # a coding scheme with no FHIR system
    nums = [item for item in _items(dataset) if item.get("ValueType") == "NUM"]
    nums[0].MeasuredValueSequence[0].NumericValue = "4242e4242"  # a number no output holds
    qualifier = pydicom.Dataset()
    qualifier.CodeValue, qualifier.CodingSchemeDesignator, qualifier.CodeMeaning = "114000", "DCM", CANARY
    nums[1].NumericValueQualifierCodeSequence = [qualifier]
    for item in nums:
        item.ObservationDateTime = f"{CANARY}424242"
    inputs["mapped"] = _write(dataset)

    dataset = read()
    dataset.ContentTemplateSequence[0].TemplateIdentifier = CANARY
    inputs["other template"] = _write(dataset)
    dataset = read()
    del dataset.ContentTemplateSequence
    dataset.ConceptNameCodeSequence[0].CodeMeaning = CANARY
    dataset.ConceptNameCodeSequence[0].CodeValue = "424242"
    inputs["no template"] = _write(dataset)
    dataset = read()
    dataset.SOPClassUID = "1.2.424242.1"
    inputs["not an SR"] = _write(dataset)
    dataset = read()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.424242.99")
    inputs["private transfer syntax"] = _write(dataset)  # pydicom writes the data set explicit VR little endian
    return inputs


def _items(dataset: pydicom.Dataset) -> list[pydicom.Dataset]:
    items = []
    for item in dataset.get("ContentSequence", []):
        items.append(item)
        items.extend(_items(item))
    return items


@pytest.mark.parametrize("reader", READERS)
def test_messages_never_quote_the_file(reader: Reader) -> None:
    """Record messages reach the ledger and logs, warnings the callers' logs: they name attributes and reasons.
    Every value these reports could be quoted by (template identifier, concept meanings and codes, coding
    scheme, numbers, UIDs, datetimes) is a canary."""
    seen = {}
    for name, data in _canary_inputs().items():
        result = _map(data, reader)
        seen[name] = (result.record.status.value, result.record.reason)
        texts = [result.record.message or "", *(w.message for w in result.warnings)]
        quoted = [text for text in texts if CANARY in text or "424242" in text or "4242e4242" in text]
        assert not quoted, (name, quoted)
        if name == "mapped":
            codes = {w.code.value for w in result.warnings}
            assert {"template_quirk", "value_absent", "unknown_coding_scheme", "invalid_value"} <= codes, codes
    assert seen == {
        "mapped": ("mapped", None),
        "other template": ("rejected", "not_tid1500"),
        "no template": ("rejected", "not_tid1500"),
        "not an SR": ("rejected", "not_sr"),
        "private transfer syntax": ("rejected", "unsupported_encoding"),
    }


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_file_cut_inside_specific_character_set_is_corrupt(reader: Reader, implicit: bool) -> None:
    """pydicom converts the top-level Specific Character Set while it loads, which hid a value cut short by the
    end of the file: the reference reader said not_sr, the fast reader corrupt (found by benchmarks/fuzz.py)."""
    dataset = pydicom.dcmread(io.BytesIO(_report()))
    dataset.SpecificCharacterSet = "ISO_IR 100"
    if implicit:
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    data = _write(dataset)
    cut = data.index(b"ISO_IR 100") + 4
    result = _map(data[:cut], reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "corrupt")


# --- junk and padding: decided by the fast reader, as pydicom decides them --------------------------------


def test_zero_filled_input_is_not_dicom() -> None:
    """Was 18-39 s through pydicom (2.6 million empty command-set elements); now the fast reader's verdict."""
    result = _map(bytes(20 << 20), Reader.AUTO)
    assert (result.record.status.value, result.record.reason) == ("rejected", "not_dicom")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("junk", [bytes(64 << 10), bytes(20), b"\xff" * 4096, bytes(range(256)) * 64])
def test_junk_without_preamble_is_not_dicom(reader: Reader, junk: bytes) -> None:
    result = _map(junk, reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "not_dicom")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("padding", [8, 64 << 10])
def test_report_with_zero_padding_maps_as_without(reader: Reader, padding: int) -> None:
    """Zero bytes after a report are empty (0000,0000) elements for pydicom; the report maps as without them."""
    report = _report()
    padded = _map(report + bytes(padding), reader)
    assert padded.record.status.value == "mapped"
    assert padded.resources == _map(report, reader).resources


def test_report_with_megabytes_of_zero_padding_is_read_by_the_fast_reader() -> None:
    """Was 9.8-12.5 s through pydicom for 10 MiB of zeros."""
    from sr2fhir_core.reading import read_fast

    report = _report()
    assert read_fast(report + bytes(10 << 20)) == read_fast(report)


@pytest.mark.parametrize("reader", READERS)
def test_zero_data_set_after_the_file_meta_is_not_an_sr(reader: Reader) -> None:
    """A Part 10 header followed by zeros: a command set of empty elements for pydicom, then nothing."""
    report = _report()
    header_end = report.index(b"\x08\x00")  # the data set starts with group 0008 after the group 0002 meta
    result = _map(report[:header_end] + bytes(64 << 10), reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "not_sr")


# --- the size above which only the fast reader reads --------------------------------------------------------


def _big_endian(data: bytes) -> bytes:
    """The report in Explicit VR Big Endian, which the fast reader leaves to the reference reader."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.dcmwrite(buffer, dataset, implicit_vr=False, little_endian=False, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("reader", READERS)
def test_input_over_the_reference_readers_size_in_a_form_only_it_reads_is_too_large(
    reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sr2fhir_core import reading

    report = _big_endian(_report())
    assert _map(report, reader).mapped
    monkeypatch.setattr(reading, "REFERENCE_READER_MAX_BYTES", len(report) - 1)
    result = _map(report, reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "too_large")
    assert "reference reader" in (result.record.message or "")


@pytest.mark.parametrize("reader", READERS)
def test_input_over_the_reference_readers_size_the_fast_reader_reads_maps(
    reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sr2fhir_core import reading

    report = _report()
    expected = _map(report, reader)
    monkeypatch.setattr(reading, "REFERENCE_READER_MAX_BYTES", len(report) - 1)
    assert _map(report, reader).resources == expected.resources


# --- the time limit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_time_limit_exceeded_is_failed_timeout(reader: Reader) -> None:
    result = map_sr(_report(), MappingOptions(reader=reader), source_path="a.dcm", time_limit=0.0)
    record = result.record
    assert (record.status.value, record.reason, record.source_path) == ("failed", "timeout", "a.dcm")
    assert not result.resources and not result.rows["measurements"]
    assert map_sr(_report(), MappingOptions(reader=reader)).mapped  # no limit left behind


def test_time_limit_stops_the_reference_reader_inside_its_parse() -> None:
    """pydicom reads a 5,000-item report in about a second: a limit of 0.05 s stops it in the middle of
    dcmread (where the input is made to end, since pydicom turns exceptions raised there into its own)."""
    large = write_sr(random_spec(seed=5, target_items=5000))
    started = time.monotonic()
    result = map_sr(large, MappingOptions(reader=Reader.PYDICOM), time_limit=0.05)
    assert (result.record.status.value, result.record.reason) == ("failed", "timeout")
    assert time.monotonic() - started < 1.0  # not a speed check: it stopped long before pydicom would finish
    assert map_sr(large, MappingOptions(reader=Reader.PYDICOM), time_limit=600).mapped


def test_time_limit_is_per_thread() -> None:
    from sr2fhir_core import deadline

    seen: list[float | None] = []
    with deadline.limit(0.0):
        thread = threading.Thread(target=lambda: seen.append(deadline.current()))
        thread.start()
        thread.join()
        assert deadline.current() is not None
    assert seen == [None] and deadline.current() is None


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("vr", "length"), [(b"UL", 2), (b"US", 1), (b"FD", 4), (b"UL", 6)])
def test_first_file_meta_element_of_the_wrong_length_is_corrupt(reader: Reader, vr: bytes, length: int) -> None:
    """pydicom converts the first file meta element to test the encoding and fails on a binary number of the
    wrong length; the fast reader read on and called the file not an SR (found by the fuzz slice)."""
    meta = bytes(128) + b"DICM" + (2).to_bytes(2, "little") + bytes(2) + vr + length.to_bytes(2, "little")
    result = _map(meta + bytes(length), reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "corrupt")


@pytest.mark.parametrize("reader", READERS)
def test_file_meta_element_cut_short_after_its_vr_became_un_is_corrupt(reader: Reader) -> None:
    """A Transfer Syntax UID written as UN (a 4-byte length) whose value runs past the end: pydicom converts it
    to the dictionary's UI, and the length was read back as a UI's 2-byte one: not_sr instead of corrupt
    (found by the fuzz campaign)."""
    report = _report()
    at = report.index(b"\x02\x00\x10\x00UI")
    length = int.from_bytes(report[at + 6 : at + 8], "little")
    header = b"\x02\x00\x10\x00UN\x00\x00" + (len(report) * 2).to_bytes(4, "little")
    mutated = report[:at] + header + report[at + 8 : at + 8 + length] + report[at + 8 + length :]
    result = _map(mutated, reader)
    assert (result.record.status.value, result.record.reason) == ("rejected", "corrupt")


# --- damaged item tags and delimiters: the fast reader reads them as pydicom does ----------------------------


def _outcome(result: MappingResult) -> tuple:
    record = result.record.as_dict()
    if record["status"] != "mapped":
        record.pop("message")
    return record, [dumps_json(r) for r in result.resources], repr(result.rows), result.warnings


@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_every_item_tag_damaged_is_corrupt_for_both_readers(undefined: bool) -> None:
    """A damaged Item tag (one in eight bit flips of a large report) is a sequence holding something other than
    an item: corrupt for both readers. pydicom alone reads an item there whatever the tag, and zeros as one
    empty item per 8 bytes; where it parses the sequence eagerly the fast reader decides it too."""
    from sr2fhir_core.reading import FastReaderUnsupported, read_fast

    dataset = pydicom.dcmread(io.BytesIO(_report(seed=1)))
    if undefined:
        for element in dataset.iterall():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    report = _write(dataset)
    starts = [i for i in range(132, len(report) - 4) if report[i : i + 4] == b"\xfe\xff\x00\xe0"]
    assert len(starts) > 20
    for start in starts:
        damaged = report[: start + 3] + b"\xe1" + report[start + 4 :]
        if undefined:
            with pytest.raises(SRRejected, match="something other than an item"):
                read_fast(damaged)
        else:
            with pytest.raises((SRRejected, FastReaderUnsupported)):
                read_fast(damaged)
        auto, reference = _map(damaged, Reader.AUTO), _map(damaged, Reader.PYDICOM)
        assert _outcome(auto) == _outcome(reference), start
        assert auto.record.reason == "corrupt", start


@pytest.mark.parametrize("inserted", [b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xfe\xff\x00\xe0\x00\x00\x00\x00"])
def test_delimiter_tag_opening_an_item_reads_as_pydicom_reads_it(inserted: bytes) -> None:
    """An item whose first "element" is a Sequence Delimitation or Item tag (length 0, so no VR letters): pydicom
    reads the whole item as implicit VR; the fast reader took it as explicit and mapped what pydicom calls
    corrupt (found by the fuzz campaign)."""
    dataset = pydicom.dcmread(io.BytesIO(_report(seed=1)))
    for element in dataset.iterall():
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
    report = _write(dataset)
    starts = [i + 8 for i in range(132, len(report) - 8) if report[i : i + 8] == b"\xfe\xff\x00\xe0" + b"\xff" * 4]
    assert len(starts) > 20
    for start in starts[::3]:
        changed = report[:start] + inserted + report[start:]
        assert _outcome(_map(changed, Reader.AUTO)) == _outcome(_map(changed, Reader.PYDICOM)), start
