"""FHIR JSON serialisation. Values stay exact: a DICOM DS number is a `Decimal` in the resource dicts and
is written digit for digit (FHIR decimals carry their precision), which the standard json module cannot."""

from __future__ import annotations

from decimal import Decimal

import orjson


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(resource: object, *, indent: bool = False) -> bytes:
    """Compact (NDJSON-ready) or indented JSON bytes; keys keep the builders' order, so output is stable."""
    return orjson.dumps(resource, default=_default, option=orjson.OPT_INDENT_2 if indent else 0)


def loads(data: bytes | str) -> object:
    return orjson.loads(data)
