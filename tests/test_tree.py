"""The C content-tree builder (`reading._tree`) against the Python builder it mirrors (`fast_reader._children`
and `_evidence`), on raw data sets built here: every Value Type, missing and empty attributes, an item's own
Specific Character Set, cache hits and misses, by-reference items, unknown Value Types, values the Python
fallbacks reject, values of the wrong type, deep trees. Every input must give both the same outcome: equal
items, or the same exception with the same message. None may crash or leak.

The corpus-wide comparison is in `test_reader_differential.py`; `benchmarks/scan_sanitizers.sh` runs this file
with AddressSanitizer and UBSan.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import struct
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import partial

import pydicom
import pytest
from leak_check import LEAK_LIMIT, memory_growth

from sr2fhir_core.content import ContentItem, NumItem, RelationshipType
from sr2fhir_core.reading import fast_reader, fast_values, read_fast, read_with_pydicom
from sr2fhir_core.reading import tags as t
from sr2fhir_core.reading.fast_parser import MAX_DEPTH, FastReaderUnsupported, RawDataSet
from sr2fhir_synth import random_spec, write_sr

pytestmark = pytest.mark.skipif(
    not fast_reader.C_TREE_BUILDER_AVAILABLE,
    reason="C content-tree builder not built (no C compiler when the package was installed)",
)

DEFAULT = fast_values.DEFAULT_ENCODINGS


def c_builder() -> fast_reader._TreeBuilder:
    assert fast_reader._C_TREE is not None
    return fast_reader._C_TREE


@dataclasses.dataclass(frozen=True)
class Raised:
    error: type[BaseException]
    message: str


def outcome(build: Callable[[], object]) -> object:
    try:
        return build()
    except Exception as error:
        return Raised(type(error), str(error))


def same_children(content: list[RawDataSet], encodings: tuple[str, ...] = DEFAULT) -> object:
    """Both builders on `content`, twice (cache misses, then hits); the outcome after checking they agree."""
    results = []
    for _ in range(2):
        expected = outcome(lambda: fast_reader._children(content, (1,), encodings))
        actual = outcome(lambda: c_builder().children(content, (1,), encodings))
        assert actual == expected or repr(actual) == repr(expected)
        results.append(actual)
    assert repr(results[0]) == repr(results[1])
    return results[0]


def same_item(item: RawDataSet, encodings: tuple[str, ...] = DEFAULT) -> object:
    result = same_children([item], encodings)
    return result[0] if isinstance(result, tuple) else result


def raised(error: type[Exception], message: str = "") -> object:
    return Raised(error, message)


# --- raw data sets -------------------------------------------------------------------------------------


def code(value: bytes = b"121071", scheme: bytes = b"DCM ", meaning: bytes = b"Finding", **extra: bytes) -> RawDataSet:
    item: RawDataSet = {t.CODE_VALUE: value, t.CODING_SCHEME_DESIGNATOR: scheme, t.CODE_MEANING: meaning}
    item.update({getattr(t, name.upper()): raw for name, raw in extra.items()})
    return item


def content_item(
    value_type: bytes | None, relationship: bytes | None = b"CONTAINS", **attributes: object
) -> RawDataSet:
    item: RawDataSet = {}
    if relationship is not None:
        item[t.RELATIONSHIP_TYPE] = relationship
    if value_type is not None:
        item[t.VALUE_TYPE] = value_type
    item[t.CONCEPT_NAME_CODE_SEQUENCE] = [code(b"C1", b"99X", b"Concept")]
    item.update({getattr(t, name.upper()): value for name, value in attributes.items()})
    return dict(sorted(item.items()))


def num(numeric: bytes | None = b"12.5 ", **measured: object) -> RawDataSet:
    value: RawDataSet = {t.MEASUREMENT_UNITS_CODE_SEQUENCE: [code(b"mm", b"UCUM", b"millimeter")]}
    if numeric is not None:
        value[t.NUMERIC_VALUE] = numeric
    value.update({getattr(t, name.upper()): raw for name, raw in measured.items()})
    return content_item(b"NUM ", measured_value_sequence=[value])


def reference(**attributes: object) -> RawDataSet:
    item: RawDataSet = {t.REFERENCED_SOP_CLASS_UID: b"1.2.840.10008.5.1.4.1.1.2\0"}
    item[t.REFERENCED_SOP_INSTANCE_UID] = b"1.2.3.4\0"
    item.update({getattr(t, name.upper()): value for name, value in attributes.items()})
    return item


EVERY_VALUE_TYPE: dict[str, RawDataSet] = {
    "CONTAINER": content_item(
        b"CONTAINER ",
        continuity_of_content=b"SEPARATE",
        content_template_sequence=[{t.MAPPING_RESOURCE: b"DCMR", t.TEMPLATE_IDENTIFIER: b"1411"}],
        content_sequence=[num(), content_item(b"CODE", concept_code_sequence=[code()])],
    ),
    "NUM": num(floating_point_value=struct.pack("<2d", 12.5, 1.0)),
    "NUM without measurement": content_item(
        b"NUM ", numeric_value_qualifier_code_sequence=[code(b"114006", b"DCM ", b"Measurement failure")]
    ),
    "CODE": content_item(b"CODE", concept_code_sequence=[code(b"T-D1100", b"SRT ", b"Brain")]),
    "TEXT": content_item(b"TEXT", text_value=b"Lesion 1 "),
    "UIDREF": content_item(b"UIDREF", uid=b"1.2.3.4.5\0"),
    "PNAME": content_item(b"PNAME ", person_name=b"Doe^Jane"),
    "DATE": content_item(b"DATE", date=b"20240102"),
    "TIME": content_item(b"TIME", time=b"101500"),
    "DATETIME": content_item(b"DATETIME", datetime=b"20240102101500 "),
    "SCOORD": content_item(b"SCOORD", graphic_type=b"POINT ", graphic_data=struct.pack("<2f", 1.5, 2.5)),
    "SCOORD3D": content_item(
        b"SCOORD3D",
        graphic_type=b"POINT ",
        graphic_data=struct.pack("<3d", 1, 2, 3),
        referenced_frame_of_reference_uid=b"1.2\0",
    ),
    "TCOORD": content_item(b"TCOORD", temporal_range_type=b"POINT ", referenced_sample_positions=struct.pack("<L", 3)),
    "IMAGE": content_item(b"IMAGE ", referenced_sop_sequence=[reference(referenced_frame_number=b"1\\2 ")]),
    "COMPOSITE": content_item(b"COMPOSITE ", referenced_sop_sequence=[reference()]),
    "WAVEFORM": content_item(
        b"WAVEFORM", referenced_sop_sequence=[reference(referenced_waveform_channels=struct.pack("<2H", 1, 2))]
    ),
    "TABLE": content_item(b"TABLE "),
    "by reference": content_item(
        None, b"INFERRED FROM ", referenced_content_item_identifier=struct.pack("<3L", 1, 2, 3)
    ),
    "unknown": content_item(b"HISTOGRAM "),
}


@pytest.mark.parametrize("name", EVERY_VALUE_TYPE)
def test_every_value_type(name: str) -> None:
    result = same_item(EVERY_VALUE_TYPE[name])
    assert isinstance(result, ContentItem), result


def test_every_value_type_together() -> None:
    children = same_children(list(EVERY_VALUE_TYPE.values()))
    assert isinstance(children, tuple)
    assert [child.position for child in children] == [(1, index) for index in range(1, len(children) + 1)]
    assert children[0].children[0].position == (1, 1, 1)
    num_item = children[1]
    assert isinstance(num_item, NumItem)
    assert (num_item.numeric_value, num_item.float_value, num_item.unit) == (
        "12.5",
        12.5,
        ("mm", "UCUM", "millimeter", None),
    )


def test_empty_content() -> None:
    assert c_builder().children([], (1,), DEFAULT) == ()


@pytest.mark.parametrize(
    "item",
    [
        {},
        {t.VALUE_TYPE: b""},
        {t.VALUE_TYPE: b"NUM "},
        {t.VALUE_TYPE: b"NUM ", t.MEASURED_VALUE_SEQUENCE: []},
        {t.VALUE_TYPE: b"NUM ", t.MEASURED_VALUE_SEQUENCE: [{}]},
        {t.VALUE_TYPE: b"NUM ", t.MEASURED_VALUE_SEQUENCE: [{t.NUMERIC_VALUE: b""}]},
        {t.VALUE_TYPE: b"NUM ", t.MEASURED_VALUE_SEQUENCE: [{t.FLOATING_POINT_VALUE: b""}]},
        {t.VALUE_TYPE: b"NUM ", t.MEASURED_VALUE_SEQUENCE: [{t.MEASUREMENT_UNITS_CODE_SEQUENCE: []}]},
        {t.VALUE_TYPE: b"CODE", t.CONCEPT_CODE_SEQUENCE: []},
        {t.VALUE_TYPE: b"CODE", t.CONCEPT_CODE_SEQUENCE: [{}]},
        {t.VALUE_TYPE: b"CODE", t.CONCEPT_CODE_SEQUENCE: [{t.CODE_MEANING: b"no value"}]},
        {t.VALUE_TYPE: b"CODE", t.CONCEPT_CODE_SEQUENCE: [code(b"", b"", b"")]},
        {t.VALUE_TYPE: b"CODE", t.CONCEPT_CODE_SEQUENCE: [{t.LONG_CODE_VALUE: b"x" * 80, t.CODE_MEANING: b"long"}]},
        {t.VALUE_TYPE: b"TEXT", t.TEXT_VALUE: b""},
        {t.VALUE_TYPE: b"TEXT", t.TEXT_VALUE: b"   "},
        {t.VALUE_TYPE: b"UIDREF"},
        {t.VALUE_TYPE: b"UIDREF", t.UID: b"\0"},
        {t.VALUE_TYPE: b"DATE", t.DATE: b""},
        {t.VALUE_TYPE: b"CONTAINER", t.CONTENT_TEMPLATE_SEQUENCE: []},
        {t.VALUE_TYPE: b"CONTAINER", t.CONTENT_TEMPLATE_SEQUENCE: [{}]},
        {t.VALUE_TYPE: b"CONTAINER", t.CONTENT_TEMPLATE_SEQUENCE: [{t.TEMPLATE_IDENTIFIER: b""}]},
        {t.VALUE_TYPE: b"CONTAINER", t.CONTENT_SEQUENCE: []},
        {t.VALUE_TYPE: b"IMAGE "},
        {t.VALUE_TYPE: b"IMAGE ", t.REFERENCED_SOP_SEQUENCE: []},
        {t.VALUE_TYPE: b"IMAGE ", t.REFERENCED_SOP_SEQUENCE: [{}]},
        {t.VALUE_TYPE: b"IMAGE ", t.REFERENCED_SOP_SEQUENCE: [{t.REFERENCED_SOP_INSTANCE_UID: b"1.2"}]},
        {t.VALUE_TYPE: b"IMAGE ", t.REFERENCED_SOP_SEQUENCE: [reference(referenced_segment_number=b"")]},
        {t.VALUE_TYPE: b"IMAGE ", t.REFERENCED_SOP_SEQUENCE: [reference(referenced_segment_number=b"\1\0")]},
        {t.REFERENCED_CONTENT_ITEM_IDENTIFIER: b""},
        {t.REFERENCED_CONTENT_ITEM_IDENTIFIER: struct.pack("<L", 1), t.VALUE_TYPE: b"TEXT"},
        {t.RELATIONSHIP_TYPE: b""},
        {t.RELATIONSHIP_TYPE: b"HAS PROPERTIES"},
        {t.RELATIONSHIP_TYPE: b" has properties "},
        {t.RELATIONSHIP_TYPE: b"SOMETHING ELSE"},
        {t.CONCEPT_NAME_CODE_SEQUENCE: []},
        {t.OBSERVATION_UID: b"1.2.3\0", t.OBSERVATION_DATETIME: b"20240102 "},
        {t.OBSERVATION_UID: b"", t.OBSERVATION_DATETIME: b""},
    ],
    ids=repr,
)
def test_missing_and_empty_attributes(item: RawDataSet) -> None:
    same_item(dict(sorted(item.items())))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"NUM ", "NUM"),
        (b"NUM", "NUM"),
        (b"num ", "NUM"),  # not as written: the Python text of it (coded_text, upper-cased)
        (b" NUM", "NUM"),
        (b"FOO ", "FOO"),
        (b"", ""),
        (b"\0\0", ""),
    ],
)
def test_value_types_as_written_or_not(raw: bytes, expected: str) -> None:
    result = same_item(content_item(raw))
    assert isinstance(result, ContentItem)
    assert (result.value_type.value if expected in ("NUM",) else getattr(result, "raw_value_type", None)) == expected


def test_relationship_types() -> None:
    results = same_children(
        [content_item(b"TEXT", raw) for raw in (b"CONTAINS", b"CONTAINS ", b"contains", b"X ", None)]
    )
    assert isinstance(results, tuple)
    assert [item.relationship for item in results] == [
        RelationshipType.CONTAINS,
        RelationshipType.CONTAINS,
        RelationshipType.CONTAINS,
        RelationshipType.UNKNOWN,
        None,
    ]


@pytest.mark.parametrize(
    "charset", [b"ISO_IR 192", b"ISO_IR 100", b"ISO_IR 144", b"\\ISO 2022 IR 87", b"ISO_IR 999", b"", b"GB18030"]
)
def test_own_specific_character_set(charset: bytes) -> None:
    """On the item, its concept code, its measured value and template items, its reference: each level's
    own character set wins over its parent's, in both builders."""
    text = "Läsion größer".encode("utf-8" if charset == b"ISO_IR 192" else "latin-1")
    items = [
        content_item(b"TEXT", specific_character_set=charset, text_value=text),
        content_item(b"CODE", concept_code_sequence=[code(meaning=text, specific_character_set=charset)]),
        num(specific_character_set=charset),
        content_item(
            b"CONTAINER",
            content_template_sequence=[{t.SPECIFIC_CHARACTER_SET: charset, t.TEMPLATE_IDENTIFIER: b"1500"}],
            content_sequence=[content_item(b"TEXT", text_value=text)],
            specific_character_set=charset,
        ),
        content_item(b"IMAGE", referenced_sop_sequence=[reference(specific_character_set=charset)]),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of unknown character sets, in both builders alike
        same_children(items)
        same_children(items, ("utf_8",))


# --- caches ----------------------------------------------------------------------------------------------


@pytest.fixture
def cold_caches() -> Iterator[None]:
    """Empty process-wide caches for one test, restored after it."""
    caches: tuple[dict, ...] = (fast_reader._CODE_CACHE, fast_values._UID_CACHE, fast_values._ASCII_CACHE)
    saved = [dict(cache) for cache in caches]
    for cache in caches:
        cache.clear()
    yield
    for cache, content in zip(caches, saved, strict=True):
        cache.clear()
        cache.update(content)


def test_cache_misses_fill_the_shared_caches(cold_caches: None) -> None:
    items = list(EVERY_VALUE_TYPE.values())
    c_first = c_builder().children(items, (1,), DEFAULT)  # every code, UID and coded value a miss
    code_key = (DEFAULT, b"C1", b"99X", b"Concept")
    assert code_key in fast_reader._CODE_CACHE
    assert b"1.2.3.4\0" in fast_values._UID_CACHE and b"SEPARATE" in fast_values._ASCII_CACHE
    assert c_builder().children(items, (1,), DEFAULT) == c_first  # hits
    assert fast_reader._children(items, (1,), DEFAULT) == c_first


def test_cache_hits_are_what_the_cache_holds(cold_caches: None) -> None:
    """A hit returns the cached object itself, as the Python builder does (one Code per distinct encoding)."""
    item = content_item(b"CODE", concept_code_sequence=[code()])
    first = c_builder().children([item], (1,), DEFAULT)[0]
    again = c_builder().children([item], (1,), DEFAULT)[0]
    python = fast_reader._children([item], (1,), DEFAULT)[0]
    assert first.concept is again.concept is python.concept
    assert first.value is again.value is python.value  # type: ignore[attr-defined]


def test_code_cache_keys_as_python(cold_caches: None) -> None:
    """The short key (three attributes) and the full key (any other item) are the Python function's."""
    short = code()
    full = code(coding_scheme_version=b"1.0")
    c_builder().children(
        [content_item(b"CODE", concept_code_sequence=[short]), content_item(b"CODE", concept_code_sequence=[full])],
        (1,),
        DEFAULT,
    )
    keys = set(fast_reader._CODE_CACHE)
    fast_reader._CODE_CACHE.clear()
    fast_reader._children(
        [content_item(b"CODE", concept_code_sequence=[short]), content_item(b"CODE", concept_code_sequence=[full])],
        (1,),
        DEFAULT,
    )
    assert keys == set(fast_reader._CODE_CACHE)


# --- failures --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (num(b"twelve"), raised(FastReaderUnsupported, "DS value that is not a number")),
        (num(b"1.5\\abc"), raised(FastReaderUnsupported, "DS value that is not a number")),
        (num(floating_point_value=b"\0" * 7), raised(FastReaderUnsupported, "FD length is not a multiple of 8")),
        (
            content_item(b"IMAGE", referenced_sop_sequence=[reference(referenced_frame_number=b"1.5")]),
            raised(FastReaderUnsupported, "IS value that is not a plain integer"),
        ),
        (
            content_item(None, referenced_content_item_identifier=b"\1\0\0"),
            raised(FastReaderUnsupported, "binary value length is not a multiple of its size"),
        ),
        (
            content_item(b"SCOORD", graphic_data=b"\0" * 5),
            raised(FastReaderUnsupported, "binary value length is not a multiple of its size"),
        ),
    ],
    ids=["ds", "ds-several", "fd", "is", "ul", "rare-builder"],
)
def test_errors_from_fallbacks_propagate(item: RawDataSet, expected: object) -> None:
    assert same_item(item) == expected


def test_first_failing_value_decides() -> None:
    """Values are evaluated in the Python builder's order: the first failure is the one raised."""
    item = num(b"bad", floating_point_value=b"\0" * 7)  # the DS fails before the FD
    assert same_item(item) == raised(FastReaderUnsupported, "DS value that is not a number")
    later_child = content_item(
        b"CONTAINER",
        content_sequence=[num(b"bad")],
        referenced_sop_sequence=[reference()],
        measured_value_sequence=[{t.NUMERIC_VALUE: b"x"}],
    )
    assert same_children([later_child, num(floating_point_value=b"\0")]) == raised(
        FastReaderUnsupported, "DS value that is not a number"
    )


@pytest.mark.parametrize(
    "item",
    [
        content_item(b"TEXT", concept_name_code_sequence=b"not a sequence"),
        content_item(b"TEXT", concept_name_code_sequence=[b"not an item"]),
        content_item(b"TEXT", content_sequence=b"not a sequence"),
        content_item(b"TEXT", content_sequence=[b"not an item"]),
        content_item(b"TEXT", content_sequence=[[]]),
        content_item(b"TEXT", relationship_type=[{}]),
        content_item([{}]),  # type: ignore[arg-type]
        content_item(b"TEXT", observation_uid=[{}]),
        content_item(b"TEXT", text_value=[{}]),
        content_item(b"UIDREF", uid=[{}]),
        content_item(b"CONTAINER", content_template_sequence=b"x"),
        content_item(b"CONTAINER", content_template_sequence=[{t.TEMPLATE_IDENTIFIER: [{}]}]),
        num(numeric_value=[{}]),
        num(floating_point_value=[{}]),
        num(measurement_units_code_sequence=b"x"),
        content_item(b"NUM", measured_value_sequence=b"x"),
        content_item(b"NUM", measured_value_sequence=[b"x"]),
        content_item(b"IMAGE", referenced_sop_sequence=b"x"),
        content_item(b"IMAGE", referenced_sop_sequence=[reference(referenced_sop_instance_uid=[{}])]),
        content_item(
            b"CODE",
            concept_code_sequence=[{t.CODE_VALUE: [{}], t.CODING_SCHEME_DESIGNATOR: b"x", t.CODE_MEANING: b"y"}],
        ),
        content_item(None, referenced_content_item_identifier=[{}]),
        content_item(b"TEXT", specific_character_set=[{}]),
    ],
    ids=lambda item: repr(item)[:80],
)
def test_values_of_the_wrong_type(item: RawDataSet) -> None:
    """The scanner never produces these; if it did, both builders would give the same result or error."""
    same_item(item)
    same_children([item, b"not an item"])  # type: ignore[list-item]


# --- depth ----------------------------------------------------------------------------------------------


def chain(depth: int) -> list[RawDataSet]:
    content: list[RawDataSet] = [content_item(b"TEXT", text_value=b"leaf")]
    for _ in range(depth):
        content = [content_item(b"CONTAINER", content_sequence=content)]
    return content


@pytest.mark.parametrize("depth", [1, 49, MAX_DEPTH, 150])
def test_deep_trees(depth: int) -> None:
    result = same_children(chain(depth))
    assert isinstance(result, tuple)


def test_deeper_than_the_recursion_limit() -> None:
    """Far deeper than any tree the scanner accepts: a RecursionError from both, never a C stack overflow."""
    content = chain(sys.getrecursionlimit() * 2)
    with pytest.raises(RecursionError):
        fast_reader._children(content, (1,), DEFAULT)
    with pytest.raises(RecursionError):
        c_builder().children(content, (1,), DEFAULT)


def deep_report(depth: int) -> bytes:
    """A generated report with a chain of `depth` nested CONTAINER items under its root."""
    dataset = pydicom.dcmread(io.BytesIO(write_sr(random_spec(3))))
    item = pydicom.Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.TextValue = "leaf"
    for _ in range(depth):
        parent = pydicom.Dataset()
        parent.RelationshipType = "CONTAINS"
        parent.ValueType = "CONTAINER"
        parent.ContinuityOfContent = "SEPARATE"
        parent.ContentSequence = [item]
        item = parent
    dataset.ContentSequence.append(item)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("depth", [40, MAX_DEPTH // 2 - 2, MAX_DEPTH // 2, MAX_DEPTH + 5])
def test_deep_reports_read_alike(depth: int) -> None:
    """Through the whole fast reader: both builders give the reference reader's document where the scanner
    accepts the nesting (each content level is a sequence and an item), and the scanner hands deeper files
    to pydicom whichever builder is chosen."""
    data = deep_report(depth)
    outcomes = []
    for builder in ("c", "python"):
        with fast_reader.using_tree_builder(builder):
            outcomes.append(outcome(lambda: read_fast(data)))
    assert outcomes[0] == outcomes[1]
    if depth <= 40:
        assert outcomes[0] == read_with_pydicom(data)
    elif depth > MAX_DEPTH:
        assert outcomes[0] == raised(FastReaderUnsupported, "nested too deeply")
    else:
        assert outcomes[0] in (read_with_pydicom(data), raised(FastReaderUnsupported, "nested too deeply"))


# --- evidence --------------------------------------------------------------------------------------------


def evidence_dataset(**overrides: object) -> RawDataSet:
    instance: RawDataSet = {
        t.REFERENCED_SOP_CLASS_UID: b"1.2.840.10008.5.1.4.1.1.2\0",
        t.REFERENCED_SOP_INSTANCE_UID: b"1.2.3\0",
    }
    series: RawDataSet = {
        t.REFERENCED_SOP_SEQUENCE: [
            instance,
            {t.REFERENCED_SOP_CLASS_UID: b"1.2"},
            {t.REFERENCED_SOP_INSTANCE_UID: b"9"},
        ],
        t.SERIES_INSTANCE_UID: b"1.2.2\0",
    }
    study: RawDataSet = {t.REFERENCED_SERIES_SEQUENCE: [series, {}], t.STUDY_INSTANCE_UID: b"1.2.1\0"}
    dataset: RawDataSet = {
        t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: [study, {t.STUDY_INSTANCE_UID: b"5"}],
        t.PERTINENT_OTHER_EVIDENCE_SEQUENCE: [{t.REFERENCED_SERIES_SEQUENCE: [series]}],
    }
    dataset.update(overrides)  # type: ignore[arg-type]
    return dataset


@pytest.mark.parametrize(
    "dataset",
    [
        {},
        evidence_dataset(),
        evidence_dataset(**{str(t.PERTINENT_OTHER_EVIDENCE_SEQUENCE): None}),
        {t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: []},
        {t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: b""},
        {t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: b"x"},
        {t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: [b"x"]},
        {t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: [{t.REFERENCED_SERIES_SEQUENCE: b"x"}]},
        {
            t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: [
                {t.REFERENCED_SERIES_SEQUENCE: [{t.REFERENCED_SOP_SEQUENCE: [b"x"]}]}
            ]
        },
        {t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: [{t.STUDY_INSTANCE_UID: [{}]}]},
        {
            t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE: [
                {t.SPECIFIC_CHARACTER_SET: b"ISO_IR 192", t.STUDY_INSTANCE_UID: b"1"}
            ]
        },
    ],
    ids=lambda dataset: repr(dataset)[:60],
)
def test_evidence(dataset: RawDataSet) -> None:
    dataset = {tag: value for tag, value in dataset.items() if not isinstance(tag, str)}
    for _ in range(2):
        expected = outcome(lambda: fast_reader._evidence(dataset, DEFAULT))
        actual = outcome(lambda: c_builder().evidence(dataset, DEFAULT))
        assert actual == expected or repr(actual) == repr(expected)


# --- selection and configuration --------------------------------------------------------------------------


def test_using_tree_builder_switches_and_restores() -> None:
    data = write_sr(random_spec(5))
    before = fast_reader._build_children
    with fast_reader.using_tree_builder("python"):
        assert fast_reader._build_children == fast_reader._children
        python = read_fast(data)
    with fast_reader.using_tree_builder("c"):
        assert fast_reader._build_children == c_builder().children
        assert read_fast(data) == python
    assert fast_reader._build_children == before
    with pytest.raises(ValueError), fast_reader.using_tree_builder("rust"):  # type: ignore[arg-type]
        pass


def test_stale_build_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from sr2fhir_core.reading import _tree

    monkeypatch.setattr(_tree, "VERSION", _tree.VERSION + 1)
    with pytest.warns(RuntimeWarning, match="stale build"):
        assert fast_reader._load_c_tree() is None


def test_uninitialised_builder() -> None:
    from sr2fhir_core.reading import _tree

    builder = _tree.Builder.__new__(_tree.Builder)
    with pytest.raises(RuntimeError, match="not initialised"):
        builder.children([{}], (1,), DEFAULT)
    with pytest.raises(RuntimeError, match="not initialised"):
        builder.evidence({}, DEFAULT)


def test_call_errors() -> None:
    with pytest.raises(TypeError):
        c_builder().children((), (1,), DEFAULT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c_builder().children([], [1], DEFAULT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c_builder().children([])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        c_builder().evidence([], DEFAULT)  # type: ignore[arg-type]


@dataclasses.dataclass(slots=True, kw_only=True)
class _WithPostInit(ContentItem):
    def __post_init__(self) -> None:
        pass


@dataclasses.dataclass(kw_only=True)
class _WithoutSlots:
    position: tuple[int, ...]


def test_only_plain_slotted_dataclasses_are_built_in_c() -> None:
    """Writing slots skips __init__: a class that does more there, or keeps fields elsewhere, is refused."""
    for cls in (_WithPostInit, _WithoutSlots):
        with pytest.raises(TypeError, match="plain slotted dataclass"):
            fast_reader._layout(cls)


def test_builder_checks_its_tables() -> None:
    from sr2fhir_core.reading import _tree

    with pytest.raises(TypeError):
        _tree.Builder()
    builder = fast_reader._load_c_tree()
    assert builder is not None
    with pytest.raises((TypeError, KeyError, ValueError)):
        builder.__init__(  # type: ignore[misc]
            tags={},
            fallbacks={},
            code_tags=(),
            code_cache={},
            uid_cache={},
            ascii_cache={},
            relationships={},
            value_types={},
            kinds={},
            by_reference=object,
            unknown=object,
            sop_reference=object,
            evidence_instance=object,
            layouts={},
            required=None,
        )
    with pytest.raises(RuntimeError, match="not initialised"):
        builder.children([{}], (1,), DEFAULT)  # a failed __init__ leaves nothing half configured


def test_no_reinitialisation_during_a_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fallback runs Python code in the middle of a build; it cannot swap the tables the build is using."""
    from sr2fhir_core.reading import _tree

    errors: list[str] = []

    def reinitialise(raw: bytes) -> str:
        try:
            builder.__init__(**fast_reader._c_tree_tables(_tree))  # type: ignore[misc]
        except RuntimeError as error:
            errors.append(str(error))
        return "ODD"

    monkeypatch.setattr(fast_reader, "_value_type_fallback", reinitialise)
    builder = fast_reader._load_c_tree()
    assert builder is not None
    result = builder.children([content_item(b"odd "), content_item(b"TEXT")], (1,), DEFAULT)
    assert errors == ["Builder re-initialised during a build"]
    assert result[0].raw_value_type == "ODD"  # type: ignore[attr-defined]
    assert result[1].value_type.value == "TEXT"
    builder.__init__(**fast_reader._c_tree_tables(_tree))  # type: ignore[misc]  # between builds: fine


# --- references ----------------------------------------------------------------------------------------


def test_no_leaks_on_success_or_failure() -> None:
    """Thousands of builds, some ending in an exception deep in the tree: memory stays flat and the objects
    the builder holds (tag keys, cached codes) are not left with extra references."""
    good = list(EVERY_VALUE_TYPE.values())
    bad = [
        [*good, num(b"bad")],
        [*chain(30), num(floating_point_value=b"\x00")],
        [
            content_item(
                b"CONTAINER", content_sequence=[*good, content_item(None, referenced_content_item_identifier=b"\1")]
            )
        ],
    ]
    builder = c_builder()
    key = t.CODE_VALUE
    concept_key = (DEFAULT, b"C1", b"99X", b"Concept")

    def run(rounds: int) -> None:
        for _ in range(rounds):
            builder.children(good, (1,), DEFAULT)
            builder.evidence(evidence_dataset(), DEFAULT)
            for content in bad:
                outcome(partial(builder.children, content, (1,), DEFAULT))

    run(20)
    gc.collect()
    references = (sys.getrefcount(key), sys.getrefcount(fast_reader._CODE_CACHE[concept_key]))
    growth = memory_growth(run)
    assert growth < LEAK_LIMIT, f"memory grew by {growth} bytes"
    assert (sys.getrefcount(key), sys.getrefcount(fast_reader._CODE_CACHE[concept_key])) == references


def test_reader_outcomes_unchanged_on_generated_reports() -> None:
    """Whole documents from the synthetic generator: equal with either builder, and to the reference."""
    for seed in range(8):
        data = write_sr(random_spec(seed, participants=seed % 2 == 0))
        with fast_reader.using_tree_builder("c"):
            c_document = read_fast(data)
        with fast_reader.using_tree_builder("python"):
            python_document = read_fast(data)
        assert c_document == python_document == read_with_pydicom(data)
