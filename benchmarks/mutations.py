"""Seeds and mutations of the fuzz campaign (benchmarks/fuzz.py): the corpus's DICOM files as seeds, each walked
into its elements, and seeded mutation operators over them.

Mutation `i` of a campaign is a function of the campaign's seed, `i` and the corpus alone (`mutate`), so a
campaign resumes where it stopped and any finding is reproduced from its index. Seeds are every DICOM file of the
corpus plus each small SR re-encoded in implicit VR and with undefined lengths, so that every walker path is
mutated; a seed is drawn with a weight that falls with its size above `WEIGHT_BYTES`.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_BYTES = 16_000
"""Seeds up to this size are drawn with weight 1, larger ones with WEIGHT_BYTES / size."""
VARIANT_MAX_BYTES = 20_000
"""SR seeds up to this size also get implicit VR and undefined-length re-encodings."""

# --- seeds: the corpus, and where each element of a seed sits --------------------------------------------


@dataclass(frozen=True, slots=True)
class Element:
    """An element or item header in a well-formed seed."""

    offset: int
    tag: int
    vr: bytes | None
    """The explicit VR; None for implicit VR elements and for items and delimiters."""
    length_offset: int
    length_size: int
    length: int
    containers: tuple[int, ...]
    """Indices (into the seed's elements) of the enclosing defined-length sequences and items: a value that
    changes size changes their lengths too."""

    @property
    def value_offset(self) -> int:
        return self.length_offset + self.length_size


@dataclass(frozen=True, slots=True)
class Seed:
    name: str
    data: bytes
    elements: tuple[Element, ...]
    explicit: bool

    def of_vr(self, vrs: frozenset[bytes]) -> list[Element]:
        return [e for e in self.elements if _value_vr(e, self.explicit) in vrs and e.length != 0xFFFFFFFF]


_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_ITEM_TAGS = (0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD)


def _dictionary_vr(tag: int) -> bytes | None:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag).split(" or ")[0].encode()
    except KeyError:
        return None


def _value_vr(element: Element, explicit: bool) -> bytes | None:
    if element.tag in _ITEM_TAGS:
        return None
    return element.vr if explicit else _dictionary_vr(element.tag)


def walk(data: bytes) -> tuple[bool, tuple[Element, ...]]:
    """Headers of a well-formed Part 10 file in explicit or implicit VR little endian, nested ones included.
    Independent of the core's parser: a mutation target list, not a reader."""
    pos = 132
    elements: list[Element] = []
    open_: list[tuple[int, int]] = []  # (end, index) of open defined-length containers
    transfer_syntax = ""
    while data[pos : pos + 2] == b"\x02\x00":
        pos, element = _header(data, pos, True, (), elements)
        if element.tag == 0x00020010:
            transfer_syntax = data[element.value_offset : element.value_offset + element.length].decode().strip("\0 ")
        pos = element.value_offset + element.length
    explicit = transfer_syntax != "1.2.840.10008.1.2"
    while pos + 8 <= len(data):
        while open_ and pos >= open_[-1][0]:
            open_.pop()
        pos, element = _header(data, pos, explicit, tuple(index for _, index in open_), elements)
        vr = _value_vr(element, explicit)
        undefined = element.length == 0xFFFFFFFF
        if element.tag == 0xFFFEE000 or vr == b"SQ" or (undefined and element.tag not in _ITEM_TAGS):
            if not undefined:
                open_.append((element.value_offset + element.length, len(elements) - 1))
            continue  # step into the sequence or item
        if element.tag not in _ITEM_TAGS:
            pos = element.value_offset + element.length
    return explicit, tuple(elements)


def _header(
    data: bytes, pos: int, explicit: bool, containers: tuple[int, ...], found: list[Element]
) -> tuple[int, Element]:
    group, number = struct.unpack_from("<HH", data, pos)
    tag = group << 16 | number
    if group == 0xFFFE or not explicit:
        element = Element(pos, tag, None, pos + 4, 4, struct.unpack_from("<L", data, pos + 4)[0], containers)
    elif data[pos + 4 : pos + 6] in _LONG_VRS:
        length = struct.unpack_from("<L", data, pos + 8)[0]
        element = Element(pos, tag, data[pos + 4 : pos + 6], pos + 8, 4, length, containers)
    else:
        length = struct.unpack_from("<H", data, pos + 6)[0]
        element = Element(pos, tag, data[pos + 4 : pos + 6], pos + 6, 2, length, containers)
    found.append(element)
    return element.value_offset, element


def load_seeds(corpus: Path) -> list[Seed]:
    """Every DICOM file of the corpus, and small SRs re-encoded (implicit VR; undefined lengths), in a fixed
    order. Files the walker cannot follow (none in the corpus today) are mutated by the byte operators only."""
    import pydicom

    seeds = []
    for path in sorted(corpus.rglob("*.dcm")):
        data = path.read_bytes()
        name = str(path.relative_to(corpus))
        seeds.append(_seed(name, data))
        dataset = pydicom.dcmread(io.BytesIO(data))
        is_sr = str(dataset.get("SOPClassUID", "")).startswith("1.2.840.10008.5.1.4.1.1.88.")
        if is_sr and len(data) <= VARIANT_MAX_BYTES:
            seeds.append(_seed(f"{name}:implicit", _encode(dataset, implicit=True, undefined=False)))
            seeds.append(_seed(f"{name}:undefined", _encode(pydicom.dcmread(io.BytesIO(data)), False, True)))
    return seeds


def _seed(name: str, data: bytes) -> Seed:
    try:
        explicit, elements = walk(data)
    except (struct.error, UnicodeDecodeError):
        explicit, elements = True, ()
    return Seed(name, data, elements, explicit)


def _encode(dataset: Any, implicit: bool, undefined: bool) -> bytes:
    import pydicom

    if undefined:
        for element in dataset.iterall():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    dataset.file_meta.TransferSyntaxUID = (
        pydicom.uid.ImplicitVRLittleEndian if implicit else pydicom.uid.ExplicitVRLittleEndian
    )
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def weights(seeds: list[Seed]) -> list[float]:
    return [min(1.0, WEIGHT_BYTES / len(seed.data)) for seed in seeds]


# --- mutations --------------------------------------------------------------------------------------------

Mutator = Callable[[random.Random, Seed], bytes]

_CHARSETS = [
    b"ISO_IR\x00100",
    b"\x00ISO_IR 100",
    b"ISO_IR 100\x00",
    b"\x00",
    b"ISO_IR 192",
    b"ISO_IR 100\\ISO_IR 144",
    b"\\ISO 2022 IR 87",
    b"ISO 2022 IR 6\\ISO 2022 IR 87",
    b"ISO 2022 IR 13\\ISO 2022 IR 87",
    b"ISO 2022\x00IR 6\\ISO 2022 IR 87",
    b"GB18030",
    b"GBK",
    b"ISO_IR 999",
    b"ISO-IR 100",
    b"utf-8",
    b"",
    b"  ",
    b"\\",
    b"\xff\xfe",
    b"ISO_IR 6\\\x00",
]
_CODE_STRINGS = [
    b"",
    b"\x00",
    b"CONTAINER",
    b"NUM",
    b"CODE",
    b"TEXT",
    b"IMAGE",
    b"SCOORD",
    b"SCOORD3D",
    b"UIDREF",
    b"CONTAINS",
    b"HAS PROPERTIES",
    b"INFERRED FROM",
    b"HAS OBS CONTEXT",
    b"HAS CONCEPT MOD",
    b"SEPARATE",
    b"NUM\x00",
    b"N\x00M",
    b"num",
    b" NUM ",
    b"NUM\\CODE",
    b"\\",
    b"\xff\xfe",
    b"1500",
    b"TID1500",
    b"\x1b$B",
    b"DCM",
    b"99PRIVATE",
    b"SRT\x00",
]
_NUMBERS = [
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"-1e-400",
    b"1e308",
    b"1.8e308",
    b"4.9e-324",
    b"2e-324",
    b"-0",
    b"nan",
    b"NaN",
    b"inf",
    b"-Infinity",
    b"9" * 16,
    b"9" * 40,
    b"0." + b"0" * 30 + b"1",
    b"1.5\\2.5",
    b"1\\",
    b"",
    b" ",
    b"\x00",
    b"0x10",
    b"1_000",
    b"+.5",
    b"5.",
    b"1e",
    b"\xef\xbc\x91",
]
_UIDS = [b"", b"\x00", b"1.2.3\x00", b"1.2..3", b"1" * 70, b"1.2.840.10008.5.1.4.1.1.88.22", b"1.2.3\\4.5.6", b" 1.2 "]
_DATES = [b"", b"20241301", b"00000000", b"2024", b"99991231235959.999999+9999", b"1\x00", b"2024-01-01", b"+0100"]
_TEXT = [b"\x1b$B", b"\xff\xfe\xfd", b"\x00\x00\x00\x00", b"a" * 1000, b"\x1b(J\x1b$)C", b"=^^", b"\\\\\\"]
_VRS = [b"CS", b"SH", b"LO", b"UT", b"UI", b"DS", b"IS", b"FD", b"FL", b"UL", b"US", b"SQ", b"OB", b"UN", b"PN"]
_ODD_VRS = [b"ZZ", b"\x00\x00", b"ox", b"Cs", b"A\x00", b"B\x00", b"  ", b"\xff\xff", b"QQ"]


def _with_length(data: bytes | bytearray, element: Element, length: int) -> bytes:
    size = element.length_size
    length &= (1 << (8 * size)) - 1
    start = element.length_offset
    return bytes(data[:start]) + length.to_bytes(size, "little") + bytes(data[start + size :])


def replace_value(seed: Seed, element: Element, value: bytes) -> bytes:
    """`element`'s value replaced by `value`, its length and those of its defined-length containers adjusted:
    a well-formed file with another value (unless a 2-byte length cannot hold it)."""
    data = bytearray(seed.data)
    start, end = element.value_offset, element.value_offset + element.length
    delta = len(value) - element.length
    data[start:end] = value
    limit = (1 << (8 * element.length_size)) - 1
    data[element.length_offset : element.length_offset + element.length_size] = min(len(value), limit).to_bytes(
        element.length_size, "little"
    )
    for index in element.containers:  # all before `start`: their offsets did not move
        container = seed.elements[index]
        if container.length != 0xFFFFFFFF:
            new = (container.length + delta) & 0xFFFFFFFF
            data[container.length_offset : container.length_offset + 4] = new.to_bytes(4, "little")
    return bytes(data)


def _padded(value: bytes, rng: random.Random) -> bytes:
    if len(value) % 2 and rng.random() < 0.8:
        return value + rng.choice([b" ", b"\x00"])
    return value


def _value_mutator(vrs: frozenset[bytes], values: list[bytes], tags: frozenset[int] = frozenset()) -> Mutator:
    def mutate(rng: random.Random, seed: Seed) -> bytes:
        targets = seed.of_vr(vrs)
        if tags:
            targets = [e for e in targets if e.tag in tags] or targets
        if not targets:
            return _flip(rng, seed)
        element = rng.choice(targets)
        value = rng.choice(values)
        if rng.random() < 0.3:  # the new value among others, or after the old one
            old = seed.data[element.value_offset : element.value_offset + element.length].rstrip(b" \x00")
            value = rng.choice([old + b"\\" + value, value + b"\\" + old, old + value])
        return replace_value(seed, element, _padded(value, rng))

    return mutate


def _charset(rng: random.Random, seed: Seed) -> bytes:
    targets = [e for e in seed.elements if e.tag == 0x00080005]
    value = _padded(rng.choice(_CHARSETS), rng)
    if targets and rng.random() < 0.7:
        return replace_value(seed, rng.choice(targets), value)
    # Insert one where there is none: at the top level (before the first element after 0008,0005), or in an item.
    items = [e for e in seed.elements if e.tag == 0xFFFEE000 and e.length != 0xFFFFFFFF]
    header = (b"\x08\x00\x05\x00CS" + len(value).to_bytes(2, "little")) if seed.explicit else None
    header = header or b"\x08\x00\x05\x00" + len(value).to_bytes(4, "little")
    if items and rng.random() < 0.5:
        item = rng.choice(items)
        # An empty "element" at the item's start: replace_value inserts there and fixes the lengths around it.
        containers = (*item.containers, seed.elements.index(item))
        start = Element(item.value_offset, 0, None, item.value_offset, 0, 0, containers)
        return replace_value(seed, start, header + value)
    top = [e for e in seed.elements if not e.containers and e.tag > 0x00080005 and e.tag >> 16 != 2]
    if not top:
        return _flip(rng, seed)
    first = min(top, key=lambda e: e.offset)
    return seed.data[: first.offset] + header + value + seed.data[first.offset :]


def _flip(rng: random.Random, seed: Seed) -> bytes:
    data = bytearray(seed.data)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 4, 8])):
        data[rng.randrange(128 if len(data) > 256 else 0, len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def _bytes(rng: random.Random, seed: Seed) -> bytes:
    data = bytearray(seed.data)
    for _ in range(rng.choice([1, 1, 2, 4])):
        data[rng.randrange(len(data))] = rng.choice([0x00, 0xFF, 0x20, 0x5C, 0x7F, 0x80, rng.randrange(256)])
    return bytes(data)


def _length(rng: random.Random, seed: Seed) -> bytes:
    if not seed.elements:
        return _flip(rng, seed)
    element = rng.choice(seed.elements)
    length = rng.choice(
        [
            0,
            1,
            element.length + 1,
            element.length - 1,
            element.length + 2,
            element.length + 8,
            0xFFFF,
            0xFFFFFFFF,
            0x7FFFFFFF,
            rng.randrange(1 << (8 * element.length_size)),
            len(seed.data) - element.offset,
        ]
    )
    return _with_length(seed.data, element, length)


def _vr(rng: random.Random, seed: Seed) -> bytes:
    explicit = [e for e in seed.elements if e.vr is not None and e.offset > 132]
    if not explicit:
        return _flip(rng, seed)
    element = rng.choice(explicit)
    vr = rng.choice(_VRS + _ODD_VRS)
    return seed.data[: element.offset + 4] + vr + seed.data[element.offset + 6 :]


def _tag(rng: random.Random, seed: Seed) -> bytes:
    if not seed.elements:
        return _flip(rng, seed)
    element = rng.choice(seed.elements)
    others = [e.tag for e in rng.sample(seed.elements, min(4, len(seed.elements)))]
    tag = rng.choice([0, 0x00080005, 0x00080016, 0x0040A730, *_ITEM_TAGS, element.tag + 1, element.tag - 1, *others])
    tag &= 0xFFFFFFFF
    raw = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    return seed.data[: element.offset] + raw + seed.data[element.offset + 4 :]


def _undefined_swap(rng: random.Random, seed: Seed) -> bytes:
    candidates = [e for e in seed.elements if e.length_size == 4 and (e.vr in (b"SQ", None))]
    if not candidates:
        return _flip(rng, seed)
    element = rng.choice(candidates)
    if element.length == 0xFFFFFFFF:
        return _with_length(seed.data, element, rng.choice([0, 8, 16, rng.randrange(len(seed.data))]))
    mutated = _with_length(seed.data, element, 0xFFFFFFFF)
    if rng.random() < 0.5:
        end = element.value_offset + element.length
        delimiter = b"\xfe\xff\x0d\xe0\0\0\0\0" if element.tag == 0xFFFEE000 else b"\xfe\xff\xdd\xe0\0\0\0\0"
        mutated = mutated[:end] + delimiter + mutated[end:]
    return mutated


def _truncate(rng: random.Random, seed: Seed) -> bytes:
    if seed.elements and rng.random() < 0.5:
        element = rng.choice(seed.elements)
        return seed.data[: element.offset + rng.choice([0, 2, 4, 6, 8, element.length_size + 5])]
    return seed.data[: rng.randrange(len(seed.data))]


def _splice(rng: random.Random, seed: Seed) -> bytes:
    """Delete a range, insert junk, or repeat an element (a repeated or out-of-order tag)."""
    data = seed.data
    choice = rng.randrange(4)
    if choice == 0:
        start = rng.randrange(len(data))
        return data[:start] + data[start + rng.choice([1, 2, 4, 8, 64, 1024]) :]
    if choice == 1:
        start = rng.randrange(len(data))
        junk = rng.choice([bytes(rng.choice([1, 8, 64, 4096])), rng.randbytes(rng.choice([1, 7, 8, 100]))])
        return data[:start] + junk + data[start:]
    if choice == 2 and seed.elements:
        element = rng.choice(seed.elements)
        end = element.value_offset + (0 if element.length == 0xFFFFFFFF else element.length)
        chunk = data[element.offset : end]
        at = rng.choice(seed.elements).offset
        return data[:at] + chunk + data[at:]
    tail = rng.choice(
        [bytes(rng.choice([1, 7, 8, 4096, 65536])), rng.randbytes(rng.choice([3, 8, 1000])), b"\xfe\xff\x00\xe0" * 64]
    )
    return data + tail


MUTATORS: dict[str, Mutator] = {
    "flip": _flip,
    "bytes": _bytes,
    "length": _length,
    "vr": _vr,
    "tag": _tag,
    "undefined": _undefined_swap,
    "truncate": _truncate,
    "splice": _splice,
    "charset": _charset,
    "code_string": _value_mutator(frozenset({b"CS"}), _CODE_STRINGS),
    "number": _value_mutator(frozenset({b"DS", b"IS"}), _NUMBERS, frozenset({0x0040A30A})),
    "uid": _value_mutator(frozenset({b"UI"}), _UIDS),
    "date": _value_mutator(frozenset({b"DA", b"TM", b"DT"}), _DATES),
    "text": _value_mutator(frozenset({b"LO", b"SH", b"PN", b"UT", b"ST", b"LT", b"UC"}), _TEXT),
}
_MUTATOR_WEIGHTS = {"flip": 4, "bytes": 2, "length": 2, "vr": 1, "tag": 1, "undefined": 1, "truncate": 1, "splice": 2}
_MUTATOR_NAMES = list(MUTATORS)
_MUTATOR_WEIGHT_LIST = [_MUTATOR_WEIGHTS.get(name, 1) for name in _MUTATOR_NAMES]


def mutate(seeds: list[Seed], seed_weights: list[float], campaign_seed: int, index: int) -> tuple[Seed, str, bytes]:
    """Mutation `index` of the campaign: (its seed, the operators applied, the bytes). A function of its
    arguments alone."""
    rng = random.Random(f"{campaign_seed}:{index}")
    seed = rng.choices(seeds, seed_weights)[0]
    names = rng.choices(_MUTATOR_NAMES, _MUTATOR_WEIGHT_LIST, k=rng.choice([1, 1, 1, 2, 3]))
    data = MUTATORS[names[0]](rng, seed)
    for name in names[1:]:  # later operators mutate bytes; structure-aware ones fall back to their seed's view
        data = MUTATORS[name](rng, Seed(seed.name, data, seed.elements, seed.explicit)) if len(data) else data
    return seed, "+".join(names), data
