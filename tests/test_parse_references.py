"""By-reference items (PS3.3 C.17.3.2.5) as `tid1500.parse` resolves them: by following the Referenced Content
Item Identifier from the root, once per referencing parent, with one warning per reference that points nowhere."""

from __future__ import annotations

import dataclasses

import pytest

from sr2fhir_core.content import ByReferenceItem, ContainerItem, ContentItem, iter_tree
from sr2fhir_core.document import SRDocument
from sr2fhir_core.errors import WarningCode
from sr2fhir_core.reading import read_document
from sr2fhir_core.tid1500.model import MeasurementReport
from sr2fhir_core.tid1500.parse import parse_report
from sr2fhir_synth import random_spec, write_sr
from sr2fhir_synth.spec import SRStorage


def _document_with_references() -> SRDocument:
    for seed in range(500):
        spec = random_spec(seed)
        if spec.instance.sop_class is SRStorage.ENHANCED_SR:
            continue
        document = read_document(write_sr(spec))
        assert document.root is not None
        if sum(isinstance(n, ByReferenceItem) for n in iter_tree(document.root)) >= 2:
            return document
    pytest.fail("no generated report with two by-reference items in 500 seeds")


def _summary(report: MeasurementReport) -> list[tuple]:
    """What a by-reference item decides: each measurement's image references (by position and kind)."""
    return [
        (
            m.position,
            [(r.position, r.kind) for r in m.image_references],
            [(r.position, r.kind) for r in g.image_references],
        )
        for g in report.all_groups
        for m in g.measurements
    ]


def _unresolved(report: MeasurementReport) -> list[str]:
    return [w.position for w in report.warnings if w.code is WarningCode.UNRESOLVED_REFERENCE]


def _by_reference_items(document: SRDocument) -> list[ByReferenceItem]:
    assert document.root is not None
    return [n for n in iter_tree(document.root) if isinstance(n, ByReferenceItem)]


def test_by_reference_items_resolve_to_the_item_at_their_path() -> None:
    """A NUM INFERRED FROM a region by reference has that region (the item at the referenced path) among its
    image references."""
    document = _document_with_references()
    assert document.root is not None
    report = parse_report(document)
    assert _unresolved(report) == []
    measurements = {m.position: m for g in report.all_groups for m in g.measurements}
    checked = 0
    for node in iter_tree(document.root):
        if node.position not in measurements:
            continue
        own = {r.position for r in measurements[node.position].image_references}
        for child in node.children:
            if isinstance(child, ByReferenceItem):
                assert child.referenced_position in own
                checked += 1
    assert checked >= 2


def test_a_dangling_reference_is_reported_once() -> None:
    """A NUM's children are read for its context, its algorithm and its finding site: the warning is one."""
    document = _document_with_references()
    dangling = _by_reference_items(document)
    for item in dangling:
        item.referenced_position = (1, 999, 1)
    report = parse_report(document)
    positions = _unresolved(report)
    assert sorted(positions) == sorted(item.position_text for item in dangling)


def _renumbered(item: ContentItem, offset: int) -> ContentItem:
    """The same tree with every position shifted, so that positions are no longer paths from the root."""
    children = tuple(_renumbered(child, offset) for child in item.children)
    position = (item.position[0] + offset, *item.position[1:])
    if isinstance(item, ByReferenceItem):
        referenced = (item.referenced_position[0] + offset, *item.referenced_position[1:])
        return dataclasses.replace(item, position=position, referenced_position=referenced, children=children)
    return dataclasses.replace(item, position=position, children=children)


def test_a_tree_whose_positions_are_not_paths_still_resolves() -> None:
    """Positions are what the references name; a tree built by hand with other positions falls back to them."""
    document = _document_with_references()
    expected = parse_report(document)
    assert document.root is not None
    root = _renumbered(document.root, 41)
    assert isinstance(root, ContainerItem)
    moved = dataclasses.replace(document, root=root)
    report = parse_report(moved)
    assert _unresolved(report) == []
    shifted = [
        ((p[0] - 41, *p[1:]), [((q[0] - 41, *q[1:]), k) for q, k in refs], [((q[0] - 41, *q[1:]), k) for q, k in group])
        for p, refs, group in _summary(report)
    ]
    assert shifted == _summary(expected)
