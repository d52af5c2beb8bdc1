"""DICOM DA / TM / DT values → FHIR date, dateTime and instant strings.

The conversions are pure and memoised: a lake repeats the same study and content dates across many SRs.

FHIR `instant` needs seconds and a timezone; DICOM often has neither. Missing seconds become 00; the
timezone comes from the DT value itself, else Timezone Offset From UTC (0008,0201), else the configured
default (docs/mapping-decisions.md, "Timezones").
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

_DT = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?(?P<second>\d{2})?"
    r"(?:\.(?P<fraction>\d{1,6}))?(?P<offset>[+-]\d{4})?$"
)
_TM = re.compile(r"^(?P<hour>\d{2})(?::?(?P<minute>\d{2}))?(?::?(?P<second>\d{2}))?(?:\.(?P<fraction>\d{1,6}))?$")
_OFFSET = re.compile(r"^[+-]\d{4}$")


def _offset(text: str) -> str:
    """ "+0100" → "+01:00"."""
    return f"{text[:3]}:{text[3:]}"


def normalise_offset(value: str | None) -> str | None:
    """A DICOM offset ("+0100") or a FHIR one ("+01:00", "Z") as FHIR; None when it is neither."""
    if not value:
        return None
    value = value.strip()
    if value == "Z":
        return "+00:00"
    if _OFFSET.match(value):
        return _offset(value)
    if re.match(r"^[+-]\d{2}:\d{2}$", value):
        return value
    return None


def _valid_date(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def dicom_date(da: str | None) -> str | None:
    """DA "20190323" → "2019-03-23"; None when absent or not a real date."""
    if not da:
        return None
    da = da.strip().replace(".", "")  # ACR-NEMA "2019.03.23"
    if len(da) != 8 or not da.isdigit() or not _valid_date(da[:4], da[4:6], da[6:]):
        return None
    return f"{da[:4]}-{da[4:6]}-{da[6:]}"


def _compose(
    year: str,
    month: str | None,
    day: str | None,
    hour: str | None,
    minute: str | None,
    second: str | None,
    fraction: str | None,
    offset: str,
    *,
    instant: bool,
) -> str | None:
    # A dateTime may stop at the year, month or day; an instant may not.
    if month is None:
        return None if instant else year
    if not 1 <= int(month) <= 12:
        return None
    if day is None:
        return None if instant else f"{year}-{month}"
    if not _valid_date(year, month, day):
        return None
    day_text = f"{year}-{month}-{day}"
    if hour is None or int(hour) > 23 or int(minute or 0) > 59 or int(second or 0) > 60:
        return None if instant else day_text
    time_text = f"{hour}:{minute or '00'}:{second or '00'}"
    if fraction:
        time_text += "." + fraction
    return f"{day_text}T{time_text}{offset}"


@lru_cache(maxsize=4096)
def from_date_time(da: str | None, tm: str | None, default_offset: str, *, instant: bool) -> str | None:
    """DA + TM (e.g. Content Date/Time) as FHIR instant or dateTime."""
    day = dicom_date(da)
    if day is None:
        return None
    year, month, dom = day.split("-")
    hour = minute = second = fraction = None
    if tm:
        match = _TM.match(tm.strip())
        if match:
            hour, minute, second, fraction = match.group("hour", "minute", "second", "fraction")
    return _compose(year, month, dom, hour, minute, second, fraction, default_offset, instant=instant)


@lru_cache(maxsize=4096)
def from_dicom_datetime(dt: str | None, default_offset: str, *, instant: bool) -> str | None:
    """DT (e.g. Observation DateTime) as FHIR instant or dateTime; its own offset wins over the default."""
    if not dt:
        return None
    match = _DT.match(dt.strip())
    if not match:
        return None
    offset = match.group("offset")
    return _compose(
        match.group("year"),
        match.group("month"),
        match.group("day"),
        match.group("hour"),
        match.group("minute"),
        match.group("second"),
        match.group("fraction"),
        _offset(offset) if offset else default_offset,
        instant=instant,
    )
