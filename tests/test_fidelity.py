"""Nothing in a report is lost silently: every content item reaches FHIR or a table, or is reported.

The reported rows are those the decision table (docs/mapping-decisions.md §18) says are reported; any other
unmapped item is a loss, and fails here. Generated reports with every template row check the same from the
writer's side (`test_fidelity_generated.py`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from corpus_manifest import read_manifest

from sr2fhir_core import DocumentStatus, WarningCode, map_sr
from sr2fhir_core.reading import read_document
from sr2fhir_core.tid1500.model import UnmappedItem
from sr2fhir_core.tid1500.parse import parse_report

DECISIONS = Path(__file__).resolve().parents[1] / "docs" / "mapping-decisions.md"
_CONCEPTS = re.compile(r"\(([^()]*?), ([A-Za-z0-9]+)\)")


def reported_concepts() -> set[tuple[str, str]]:
    """(scheme, code) of every row the decision table's §18 marks "reported" in its FHIR column; "a..b"
    ranges of DCM codes are expanded."""
    text = DECISIONS.read_text(encoding="utf-8")
    section = text[text.index("## 18.") :]
    concepts: set[tuple[str, str]] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[2].startswith("reported"):
            continue
        for values, scheme in _CONCEPTS.findall(cells[0] + " " + cells[1]):
            for value in (v.strip() for v in values.split(",")):
                if value in ("", "..."):
                    continue
                if ".." in value:
                    first, last = value.split("..")
                    concepts.update((scheme, str(n)) for n in range(int(first), int(last) + 1))
                else:
                    concepts.add((scheme, value))
    return concepts


REPORTED = reported_concepts()


def losses(unmapped: tuple[UnmappedItem, ...]) -> list[UnmappedItem]:
    """Unmapped items the decision table does not report: neither a reported concept nor inside one (an Image
    Library's entries, a property's children)."""
    reported_roots = [u.position for u in unmapped if reported(u)]
    return [u for u in unmapped if not any(u.position[: len(root)] == root for root in reported_roots)]


def reported(item: UnmappedItem) -> bool:
    # Rows §18 reports whatever their concept: TID 310 properties (HAS PROPERTIES), coded and text derivation
    # parameters (INFERRED FROM CODE or TEXT).
    return (
        item.concept in REPORTED
        or item.relationship == "HAS PROPERTIES"
        or (item.relationship == "INFERRED FROM" and item.value_type in ("CODE", "TEXT"))
        or (item.concept == ("DCM", "111001") and item.value_type == "CODE")  # Algorithm Name as a CODE
    )


def test_the_decision_table_reports_what_no_output_carries() -> None:
    # A sample of the rows §18 reports; the parse is the table, not a list kept here.
    for concept in [("DCM", "121049"), ("DCM", "121058"), ("NCIt", "C67447"), ("DCM", "111028"), ("DCM", "121009")]:
        assert concept in REPORTED
    assert ("SCT", "363698007") not in REPORTED  # Finding Site is mapped


@pytest.mark.corpus
def test_every_corpus_item_is_mapped_or_reported(corpus_dir: Path) -> None:
    """On every real file: the record counts every content item; the unmapped ones are listed once in one
    warning, and each is a row the decision table reports."""
    real = [e for e in read_manifest(corpus_dir) if e.section == "real"]
    assert real
    for entry in real:
        data = (corpus_dir / entry.file).read_bytes()
        result = map_sr(data)
        assert result.record.status is DocumentStatus.MAPPED, entry.file
        report = parse_report(read_document(data))
        assert report.content_items == entry.content_items + 1 == result.record.content_items, entry.file
        assert result.record.unmapped_items == len(report.unmapped), entry.file
        assert len({u.position for u in report.unmapped}) == len(report.unmapped)
        assert losses(report.unmapped) == [], entry.file
        warnings = [w for w in result.warnings if w.code is WarningCode.UNMAPPED_CONTENT and not w.position]
        if report.unmapped:
            [warning] = warnings
            assert warning.message.startswith(f"{len(report.unmapped)} content items not mapped: ")
            assert result.record.unmapped_concepts is not None
            assert result.record.unmapped_concepts in warning.message
        else:
            assert warnings == [] and result.record.unmapped_concepts is None
