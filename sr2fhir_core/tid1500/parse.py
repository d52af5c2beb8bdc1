"""Content tree → `MeasurementReport`: recognise TID 1500, then read its containers, groups and items.

The rules follow PS3.16 and the IG's mapping tables (NOTES §5). Unknown or unexpected items are skipped,
not fatal: real producers add context the template does not name. Nothing is dropped silently: the parse
records every item whose content an output carries (`use`), and the others become the report's `unmapped`
items (counted in the document record, listed in one warning; docs/mapping-decisions.md §18); what the
mapping can carry only in part becomes a `MappingWarning`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypedDict

from .. import codes, deadline
from ..codes import concept_key, same_concept
from ..content import (
    ByReferenceItem,
    Code,
    CodeItem,
    CompositeItem,
    ContainerItem,
    ContentItem,
    ImageItem,
    NumItem,
    PNameItem,
    RelationshipType,
    Scoord3DItem,
    ScoordItem,
    TextItem,
    iter_tree,
)
from ..document import SRDocument
from ..errors import MappingWarning, RejectionReason, SRRejected, WarningCode
from ..numbers import float32_decimals
from .model import (
    SEGMENT_REFERENCE_KINDS,
    Algorithm,
    ConceptModifier,
    DerivationParameter,
    DerivedMeasurement,
    DeviceObserver,
    FindingSite,
    ImageReference,
    ImageReferenceKind,
    ImageReferencePurpose,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    PersonObserver,
    QualitativeEvaluation,
    ReferencedInstance,
    UnmappedItem,
)

TID1500_IDENTIFIERS = frozenset({"1500", "TID1500", "TID 1500"})
"""Template Identifier (0040,DB00) values accepted as TID 1500; "TID1500" is a highdicom quirk."""
_UNUSABLE_NUMBER = "a Numeric Value that is not a finite decimal both FHIR and a 64-bit float can hold"
"""numbers.measured_value's rule, as a warning says it."""

IMAGE_KINDS: dict[tuple[str, str], ImageReferenceKind] = {
    codes.REFERENCED_SEGMENT.key: ImageReferenceKind.REFERENCED_SEGMENT,
    codes.REFERENCED_SEGMENTATION_FRAME.key: ImageReferenceKind.REFERENCED_SEGMENTATION_FRAME,
    codes.ILLUSTRATION_OF_ROI.key: ImageReferenceKind.ILLUSTRATION_OF_ROI,
    codes.VISUAL_EXPLANATION.key: ImageReferenceKind.VISUAL_EXPLANATION,
}
COMPOSITE_KINDS: dict[tuple[str, str], ImageReferenceKind] = {
    codes.REGION_IN_SPACE.key: ImageReferenceKind.REGION_IN_SPACE,
    codes.REAL_WORLD_VALUE_MAP.key: ImageReferenceKind.REAL_WORLD_VALUE_MAP,
}
"""Concept name of an IMAGE / COMPOSITE item → what it references (TID 1410/1411/1501)."""
IMAGE_PURPOSES: dict[tuple[str, str], ImageReferencePurpose] = {
    codes.SOURCE_IMAGE_FOR_SEGMENTATION.key: ImageReferencePurpose.SOURCE_IMAGE_FOR_SEGMENTATION,
}
"""Concept name of an IMAGE / COMPOSITE item of kind OTHER → what it is for (TID 1411)."""
REGION_CONCEPTS = frozenset({codes.IMAGE_REGION.key, codes.VOLUME_SURFACE.key})
"""Concept names of a group's own region (TID 1410 "Image Region", TID 1411 "Volume Surface"); a SCOORD or
SCOORD3D the group CONTAINS without a concept name is read as its region too. Other spatial items keep their
own concept."""


def is_tid1500(document: SRDocument) -> bool:
    root = document.root
    if root is None:
        return False
    if root.template_id is not None:
        return root.template_id.strip().upper() in TID1500_IDENTIFIERS
    return same_concept(root.concept, codes.IMAGING_MEASUREMENT_REPORT)


def parse_report(document: SRDocument) -> MeasurementReport:
    """Read a TID 1500 document; raise `SRRejected` when it is another template or lacks what is needed."""
    root = document.root
    if root is None:
        raise SRRejected(RejectionReason.NOT_SR, "no SR content tree")
    if not is_tid1500(document):
        # Attributes and reasons only, never their values: messages reach logs and ledgers.
        why = (
            "a Template Identifier (0040,DB00) other than 1500"
            if root.template_id
            else "no Template Identifier (0040,DB00) and a root Concept Name other than (126000, DCM)"
        )
        raise SRRejected(RejectionReason.NOT_TID1500, f"SR with {why} is not a TID 1500 Measurement Report")
    if not document.sop_instance_uid:
        raise SRRejected(RejectionReason.MISSING_REQUIRED, "SOP Instance UID (0008,0018) is missing")
    if not document.study_instance_uid:
        raise SRRejected(RejectionReason.MISSING_REQUIRED, "Study Instance UID (0020,000D) is missing")
    return _ReportParser(document).parse()


class _ReportParser:
    def __init__(self, document: SRDocument) -> None:
        self.document = document
        self.warnings: list[MappingWarning] = []
        self._by_position: dict[tuple[int, ...], ContentItem] | None = None
        self._resolved_children: dict[int, tuple[ContentItem, ...]] = {}
        """Resolved children of items with by-reference children, by id(item): the document keeps the items
        alive, and a NUM's children are read up to three times (its own context, its algorithm, its site)."""
        self._image_references: dict[tuple[int, ...], tuple[ImageReference | None, list[MappingWarning]]] = {}
        """Each reference item's reading, by position, with the warnings it gave: measurements name their
        group's regions by reference, and each such name would read the same item again."""
        self._evidence = {e.sop_instance_uid: (e.study_instance_uid, e.series_instance_uid) for e in document.evidence}
        self._group_count = 0
        self._groups: dict[tuple[int, ...], MeasurementGroup] = {}
        """Groups read so far, by position: a derived measurement names its groups by reference (R-INFERRED
        FROM), and such a group is the one already read, not a second one."""
        self.used: set[tuple[int, ...]] = set()
        """Positions of the content items some output carries; every other item is reported (accounting)."""
        self.use = self.used.add

    def warn(self, code: WarningCode, item: ContentItem | None, message: str) -> None:
        self.warnings.append(MappingWarning(code, item.position_text if item else "", message))

    # --- tree helpers ----------------------------------------------------------------------------------

    def children(self, item: ContentItem) -> tuple[ContentItem, ...]:
        """Children with by-reference items replaced by the item they point at, carrying the by-reference
        item's relationship. By-reference items are rare, so the common case returns the tuple itself."""
        kids = item.children
        if kids:
            deadline.check()  # map_sr's time limit, once per item with children
        for child in kids:
            if child.__class__ is ByReferenceItem:
                resolved = self._resolved_children.get(id(item))
                if resolved is None:
                    resolved = self._resolved_children[id(item)] = self._resolved(kids)
                return resolved
        return kids

    def _resolved(self, kids: tuple[ContentItem, ...]) -> tuple[ContentItem, ...]:
        """Made once per parent item, so an unresolvable reference is reported once."""
        resolved = []
        for child in kids:
            if not isinstance(child, ByReferenceItem):
                resolved.append(child)
                continue
            target = self._resolve(child)
            if target is None:
                self.warn(
                    WarningCode.UNRESOLVED_REFERENCE,
                    child,
                    "by-reference item points at no content item " + ".".join(map(str, child.referenced_position)),
                )
            elif target.relationship is child.relationship:
                self.use(child.position)
                resolved.append(target)
            else:
                self.use(child.position)
                resolved.append(_with_relationship(target, child.relationship))
        return tuple(resolved)

    def _resolve(self, item: ByReferenceItem) -> ContentItem | None:
        """The item at Referenced Content Item Identifier (0040,DB73): a 1-based path from the root, followed
        child by child rather than by indexing the whole tree. A tree whose positions are not those paths (one
        built by hand) falls back to the index."""
        root = self.document.root
        assert root is not None
        path = item.referenced_position
        node: ContentItem = root
        for index in path[1:]:
            kids = node.children
            if not 0 < index <= len(kids):
                break
            node = kids[index - 1]
        else:
            if node.position == path:
                return node
        if self._by_position is None:
            self._by_position = {node.position: node for node in iter_tree(root)}
        return self._by_position.get(path)

    # --- report -----------------------------------------------------------------------------------------

    def parse(self) -> MeasurementReport:
        root = self.document.root
        assert root is not None
        if root.template_id is not None and root.template_id.strip() != "1500":
            self.warn(WarningCode.TEMPLATE_QUIRK, root, "Template Identifier (0040,DB00) other than 1500 read as 1500")
        elif root.template_id is not None and not same_concept(root.concept, codes.IMAGING_MEASUREMENT_REPORT):
            self.warn(WarningCode.TEMPLATE_QUIRK, root, "TID 1500 with a root Concept Name other than (126000, DCM)")

        language: Code | None = None
        procedures: list[Code] = []
        groups: list[MeasurementGroup] = []
        derived: list[DerivedMeasurement] = []
        evaluations: list[QualitativeEvaluation] = []
        found_container = False
        container_algorithm: Algorithm | None = None

        self.use(root.position)
        for item in self.children(root):
            key = concept_key(item.concept)
            if isinstance(item, CodeItem):
                if key == codes.LANGUAGE.key:
                    language = item.value
                elif key == codes.PROCEDURE_REPORTED.key and item.value is not None:
                    procedures.append(item.value)
            elif not isinstance(item, ContainerItem):
                continue
            elif key == codes.IMAGING_MEASUREMENTS.key:
                found_container = True
                self.use(item.position)
                container_algorithm = self.algorithm(self.children(item))
                for child in self.children(item):
                    if isinstance(child, ContainerItem) and concept_key(child.concept) == codes.MEASUREMENT_GROUP.key:
                        groups.append(self.group(child, container_algorithm))
            elif key == codes.DERIVED_IMAGING_MEASUREMENTS.key:
                found_container = True
                self.use(item.position)
                # Context reaches descendants only: the Imaging Measurements container is a sibling.
                derived_algorithm = self.algorithm(self.children(item))
                for child in self.children(item):
                    if isinstance(child, NumItem) and child.concept is not None:
                        derived.append(self.derived_measurement(child, derived_algorithm))
            elif key == codes.QUALITATIVE_EVALUATIONS.key:
                found_container = True
                self.use(item.position)
                qe_algorithm = self.algorithm(self.children(item))
                for child in self.children(item):
                    if child.relationship is RelationshipType.CONTAINS:
                        evaluation = self.qualitative_evaluation(child, qe_algorithm)
                        if evaluation is not None:
                            evaluations.append(evaluation)

        if not found_container:
            raise SRRejected(
                RejectionReason.MISSING_REQUIRED,
                "no Imaging Measurements, Derived Imaging Measurements or Qualitative Evaluations container",
            )
        persons, devices = self.observers(root)
        self.check_root_rows(language, procedures, persons, devices)
        content_items, unmapped = self.account(root)
        return MeasurementReport(
            document=self.document,
            language=language,
            procedures_reported=tuple(procedures),
            person_observers=persons,
            device_observers=devices,
            groups=tuple(groups),
            derived_measurements=tuple(derived),
            qualitative_evaluations=tuple(evaluations),
            warnings=tuple(self.warnings),
            content_items=content_items,
            unmapped=unmapped,
        )

    def check_root_rows(
        self,
        language: Code | None,
        procedures: list[Code],
        persons: tuple[PersonObserver, ...],
        devices: tuple[DeviceObserver, ...],
    ) -> None:
        """TID 1500's mandatory root rows (rows 2, 3 and 4): a report without them is mapped, with a warning."""
        missing = [
            row
            for row, present in (
                ("Language of Content Item and Descendants (TID 1204)", language is not None),
                ("Observation Context with an observer (TID 1001)", bool(persons or devices)),
                ("Procedure reported (121058, DCM)", bool(procedures)),
            )
            if not present
        ]
        if missing:
            self.warn(
                WarningCode.NONCONFORMANT_CONTENT,
                self.document.root,
                "TID 1500 report without its mandatory " + ", ".join(missing),
            )

    def account(self, root: ContainerItem) -> tuple[int, tuple[UnmappedItem, ...]]:
        """(content items in the tree, the items no output carries) — one walk, after everything was read."""
        used = self.used
        unmapped: list[UnmappedItem] = []
        count = 0
        stack: list[ContentItem] = [root]
        while stack:
            item = stack.pop()
            count += 1
            if item.position not in used:
                relationship = item.relationship.value if item.relationship is not None else None
                unmapped.append(
                    UnmappedItem(item.position, concept_key(item.concept), relationship, item.value_type.value)
                )
            stack.extend(item.children)
        unmapped.sort(key=lambda u: u.position)
        return count, tuple(unmapped)

    def observers(self, root: ContainerItem) -> tuple[tuple[PersonObserver, ...], tuple[DeviceObserver, ...]]:
        """TID 1001 at the document level: each Observer Type item starts a new observer (TID 1002)."""
        persons: list[PersonObserver] = []
        devices: list[DeviceObserver] = []
        device: dict | None = None
        device_items: list[tuple[int, ...]] = []
        """The rows of the device observer being read: used only if it is one (it has a UID or a name)."""

        def close_device() -> None:
            if device is not None and (device.get("uid") or device.get("name")):
                devices.append(DeviceObserver(**device))
                self.used.update(device_items)

        for item in self.children(root):
            if item.relationship is not RelationshipType.HAS_OBS_CONTEXT:
                continue
            key = concept_key(item.concept)
            if key == codes.OBSERVER_TYPE.key and isinstance(item, CodeItem):
                close_device()
                device_items = [item.position]
                device = {"position": item.position} if same_concept(item.value, codes.OBSERVER_DEVICE) else None
                if device is None:
                    self.use(item.position)  # the person observer's type: said by the Practitioner
            elif key == codes.PERSON_OBSERVER_NAME.key and isinstance(item, PNameItem | TextItem):
                if item.value:
                    if isinstance(item, TextItem):
                        # highdicom before 0.23 wrote the name as TEXT; TID 1003 says PNAME.
                        self.warn(WarningCode.TEMPLATE_QUIRK, item, "Person Observer Name as TEXT, read as PNAME")
                    persons.append(PersonObserver(name=item.value))
                    self.use(item.position)
            elif key == codes.PERSON_OBSERVER_ORGANIZATION.key and isinstance(item, TextItem):
                if persons and persons[-1].organization is None:
                    last = persons.pop()
                    persons.append(PersonObserver(name=last.name, organization=item.value, role=last.role))
            elif device is not None:
                field = _DEVICE_OBSERVER_FIELDS.get(key)
                value = getattr(item, "value", None)
                if field and isinstance(value, str) and value:
                    device[field] = value
                    device_items.append(item.position)
        close_device()
        return tuple(persons), tuple(devices)

    # --- groups and their parts ------------------------------------------------------------------------

    def group(self, container: ContainerItem, inherited_algorithm: Algorithm | None) -> MeasurementGroup:
        known = self._groups.get(container.position)
        if known is not None:
            return known
        self._group_count += 1
        self.use(container.position)
        fields: _GroupContext = {}
        references: list[ImageReference] = []
        others: list[ImageReference] = []
        numbers: list[NumItem] = []
        evaluation_items: list[ContentItem] = []
        algorithm_items: list[ContentItem] = []
        kids = self.children(container)
        sites = self.finding_sites(kids)
        for item in kids:
            relationship = item.relationship
            key = concept_key(item.concept)
            if key in _ALGORITHM_FIELDS:
                algorithm_items.append(item)
            if (text_field := _GROUP_TEXT_FIELDS.get(key)) is not None:
                fields[text_field] = _text_of(item)
                if text_field in _MAPPED_GROUP_TEXT_FIELDS:
                    self.use(item.position)
            elif (coded_field := _GROUP_CODED_FIELDS.get(key)) is not None:
                if isinstance(item, CodeItem):
                    fields[coded_field] = item.value
                    self.use(item.position)
            elif key == _SITE_KEY:
                pass  # read above, all of them
            elif isinstance(item, NumItem):
                if key not in _TIME_POINT_KEYS:  # TID 1502's NUM rows are context (reported, §18)
                    numbers.append(item)
            elif isinstance(item, _SPATIAL_ITEMS) and not _is_region(item):
                if relationship is RelationshipType.HAS_CONCEPT_MOD:
                    self.warn(
                        WarningCode.NONCONFORMANT_CONTENT,
                        item,
                        f"{item.value_type} as HAS CONCEPT MOD, which the SR IOD does not allow: kept as a "
                        "spatial item of its own concept",
                    )
                reference = self.image_reference(item, in_group=True)
                if reference is not None:
                    others.append(reference)
            elif isinstance(item, _REFERENCE_ITEMS):
                reference = self.image_reference(item, in_group=True)
                if reference is not None:
                    references.append(reference)
            elif (
                isinstance(item, CodeItem | TextItem)
                and relationship is RelationshipType.CONTAINS
                and key not in codes.NOT_QUALITATIVE_EVALUATION_KEYS
            ):
                evaluation_items.append(item)

        own_algorithm = self.algorithm(algorithm_items)
        algorithm = own_algorithm or inherited_algorithm
        method = fields.get("method")
        measurements = tuple(
            self.measurement(
                number,
                inherited_method=method,
                inherited_sites=sites,
                inherited_algorithm=algorithm,
            )
            for number in numbers
            if number.concept is not None
        )
        evaluations = tuple(
            evaluation
            for item in evaluation_items
            if (evaluation := self.qualitative_evaluation(item, algorithm)) is not None
        )
        group = self._groups[container.position] = MeasurementGroup(
            position=container.position,
            template_id=container.template_id,
            observation_uid=container.observation_uid,
            observation_datetime=container.observation_datetime,
            algorithm=algorithm,
            own_algorithm=own_algorithm is not None,
            image_references=tuple(references),
            other_spatial_items=tuple(others),
            measurements=measurements,
            qualitative_evaluations=evaluations,
            index=self._group_count,
            finding_sites=sites,
            **fields,
        )
        return group

    def finding_sites(
        self, siblings: tuple[ContentItem, ...], sites: list[CodeItem] | None = None
    ) -> tuple[FindingSite, ...]:
        """Every Finding Site among an item's (resolved) children (or `sites`, when the caller found them), in
        document order (TID 1410/1411/1501 and TID 300 allow 1-n), each with its own Laterality and
        Topographical modifier."""
        if sites is None:
            sites = [i for i in siblings if isinstance(i, CodeItem) and concept_key(i.concept) == _SITE_KEY]
        if not sites:
            return ()
        # TID 300/1419 put Laterality and Topographical modifier under the Finding Site; some producers put
        # them beside it, which says whose they are only when there is one site.
        beside = self.site_modifiers(siblings) if len(sites) == 1 else {}
        result = []
        for item in sites:
            if item.value is None:
                continue
            self.use(item.position)
            own = self.site_modifiers(self.children(item))
            laterality = own.get("laterality") or beside.get("laterality")
            modifier = own.get("topographical_modifier") or beside.get("topographical_modifier")
            for used in (laterality, modifier):
                if used is not None:
                    self.use(used.position)
            result.append(
                FindingSite(
                    site=item.value,
                    laterality=laterality.value if laterality else None,
                    topographical_modifier=modifier.value if modifier else None,
                )
            )
        return tuple(result)

    @staticmethod
    def site_modifiers(items: tuple[ContentItem, ...]) -> dict[str, CodeItem]:
        """The first Laterality and Topographical modifier CODE items among `items`, by model field."""
        found: dict[str, CodeItem] = {}
        for child in items:
            if isinstance(child, CodeItem) and child.value is not None:
                field = _SITE_MODIFIER_FIELDS.get(concept_key(child.concept))
                if field is not None and field not in found:
                    found[field] = child
        return found

    def algorithm(self, children: Sequence[ContentItem]) -> Algorithm | None:
        """TID 4019 among an item's (resolved) children, if it has an Algorithm Name."""
        name = version = family = manufacturer = None
        parameters: list[str] = []
        for child in children:
            field = _ALGORITHM_FIELDS.get(concept_key(child.concept))
            if field == "family":
                if isinstance(child, CodeItem):
                    family = child.value
            elif field == "parameters":
                if text := _text_of(child):
                    parameters.append(text)
            elif field == "name":
                name = _text_of(child)
            elif field == "version":
                version = _text_of(child)
            elif field == "manufacturer":
                manufacturer = _text_of(child)
        if not name:
            return None
        for child in children:
            key = concept_key(child.concept)
            # An Algorithm Name written as a CODE gives only its meaning: the code is reported (§18).
            if key in _ALGORITHM_FIELDS and not (key == _ALGORITHM_NAME_KEY and isinstance(child, CodeItem)):
                self.use(child.position)
        return Algorithm(
            name=name, version=version, family=family, parameters=tuple(parameters), manufacturer=manufacturer
        )

    def measurement(
        self,
        item: NumItem,
        *,
        inherited_method: Code | None,
        inherited_sites: tuple[FindingSite, ...],
        inherited_algorithm: Algorithm | None,
    ) -> Measurement:
        assert item.concept is not None
        self.use(item.position)
        derivation = method = None
        modifiers: list[ConceptModifier] = []
        parameters: list[DerivationParameter] = []
        references: list[ImageReference] = []
        algorithm_items: list[ContentItem] = []
        kids = self.children(item)
        site_items: list[CodeItem] = []
        modifier_items: list[CodeItem] = []
        for child in kids:
            key = concept_key(child.concept)
            if key in _ALGORITHM_FIELDS and child.relationship is not RelationshipType.INFERRED_FROM:
                algorithm_items.append(child)  # TID 4019 rows; INFERRED FROM ones are derivation parameters
            if key == _SITE_KEY:
                if isinstance(child, CodeItem):
                    site_items.append(child)
            elif isinstance(child, CodeItem) and child.relationship is not RelationshipType.INFERRED_FROM:
                field = _MEASUREMENT_CODED_FIELDS.get(key)
                if field == "derivation":
                    derivation = child.value
                    self.use(child.position)
                elif field == "method":
                    method = child.value
                    self.use(child.position)
                elif key not in _NOT_CONCEPT_MODIFIERS and _is_concept_modifier(child):
                    modifier_items.append(child)
            elif child.relationship is RelationshipType.INFERRED_FROM and isinstance(child, NumItem):
                if child.concept is not None:
                    parameters.append(
                        DerivationParameter(
                            concept=child.concept,
                            numeric_value=child.numeric_value,
                            unit=child.unit,
                            position=child.position,
                            # Named by reference: another NUM of the report (not one written under this one).
                            by_reference=child.position[: len(item.position)] != item.position,
                        )
                    )
                    self.use(child.position)
            elif child.relationship is RelationshipType.INFERRED_FROM and isinstance(child, _REFERENCE_ITEMS):
                reference = self.image_reference(child)
                if reference is not None:
                    references.append(reference)
        sites = self.finding_sites(kids, site_items) if site_items else ()
        for child in modifier_items:
            if child.position not in self.used:  # else a Laterality read as its one Finding Site's
                modifiers.append(self.concept_modifier(child))
        own_algorithm = self.algorithm(algorithm_items)
        measurement = Measurement(
            position=item.position,
            concept=item.concept,
            numeric_value=item.numeric_value,
            float_value=item.float_value,
            unit=item.unit,
            qualifier=item.qualifier,
            observation_uid=item.observation_uid,
            observation_datetime=item.observation_datetime,
            derivation=derivation,
            method=method or inherited_method,
            finding_sites=sites or inherited_sites,
            algorithm=own_algorithm or inherited_algorithm,
            own_algorithm=own_algorithm is not None,
            image_references=tuple(references),
            concept_modifiers=tuple(modifiers),
            derivation_parameters=tuple(parameters),
        )
        if item.numeric_value is None or item.qualifier is not None:
            why = "a Numeric Value Qualifier" if item.qualifier is not None else "no Measured Value Sequence"
            self.warn(WarningCode.VALUE_ABSENT, item, f"NUM has no usable value ({why})")
        elif measurement.number is None:
            self.warn(WarningCode.VALUE_ABSENT, item, f"NUM has no usable value ({_UNUSABLE_NUMBER})")
        return measurement

    def qualitative_evaluation(
        self, item: ContentItem, inherited_algorithm: Algorithm | None
    ) -> QualitativeEvaluation | None:
        if item.concept is None:
            return None
        if isinstance(item, CodeItem):
            value_code, value_text = item.value, None
        elif isinstance(item, TextItem):
            value_code, value_text = None, item.value
        else:
            return None
        if value_code is None and not value_text:
            self.warn(WarningCode.VALUE_ABSENT, item, "qualitative evaluation has no value")
        self.use(item.position)
        kids = self.children(item)
        own_algorithm = self.algorithm(kids)
        modifiers = [
            self.concept_modifier(child)
            for child in kids
            if isinstance(child, CodeItem)
            and concept_key(child.concept) not in _ALGORITHM_FIELDS
            and _is_concept_modifier(child)
        ]
        return QualitativeEvaluation(
            position=item.position,
            concept=item.concept,
            value_code=value_code,
            value_text=value_text,
            observation_uid=item.observation_uid,
            observation_datetime=item.observation_datetime,
            algorithm=own_algorithm or inherited_algorithm,
            own_algorithm=own_algorithm is not None,
            concept_modifiers=tuple(modifiers),
        )

    def concept_modifier(self, item: CodeItem) -> ConceptModifier:
        """$ModType = $ModValue of a measurement, $QualModType = $QualModValue of an evaluation (mapped)."""
        assert item.concept is not None and item.value is not None  # `_is_concept_modifier`
        self.use(item.position)
        return ConceptModifier(item.concept, item.value)

    def derived_measurement(self, item: NumItem, inherited_algorithm: Algorithm | None) -> DerivedMeasurement:
        measurement = self.measurement(
            item, inherited_method=None, inherited_sites=(), inherited_algorithm=inherited_algorithm
        )
        groups = tuple(
            self.group(child, measurement.algorithm)
            for child in self.children(item)
            if isinstance(child, ContainerItem) and same_concept(child.concept, codes.MEASUREMENT_GROUP)
        )
        return DerivedMeasurement(measurement=measurement, groups=groups)

    # --- image references ------------------------------------------------------------------------------

    def instance(self, image: ImageItem | CompositeItem) -> ReferencedInstance | None:
        reference = image.reference
        if reference is None:
            self.warn(
                WarningCode.UNRESOLVED_REFERENCE,
                image,
                "reference item with an empty Referenced SOP Sequence",
            )
            return None
        study, series = self._evidence.get(reference.sop_instance_uid, (None, None))
        return ReferencedInstance(
            sop_class_uid=reference.sop_class_uid,
            sop_instance_uid=reference.sop_instance_uid,
            series_instance_uid=series,
            study_instance_uid=study,
            frame_numbers=reference.frame_numbers,
            segment_numbers=reference.segment_numbers,
        )

    def warn_segment_frames(self, item: ContentItem, instance: ReferencedInstance) -> None:
        """A segmentation reference's `instance.subset` holds its segment numbers (the IG): frame numbers
        beside them have no element, and frame numbers alone stand in for them (§17)."""
        if instance.segment_numbers:
            self.warn(
                WarningCode.UNMAPPED_CONTENT,
                item,
                "Referenced Frame Number (0008,1160) of a segmentation reference not written: instance.subset "
                "holds its Referenced Segment Numbers, as the IG maps",
            )
        else:
            self.warn(
                WarningCode.NONCONFORMANT_CONTENT,
                item,
                "segmentation reference without a Referenced Segment Number (0062,000B): instance.subset holds "
                "its Referenced Frame Numbers",
            )

    def image_reference(self, item: ContentItem, *, in_group: bool = False) -> ImageReference | None:
        """The reference an item makes (a by-reference target read as often as it is named, with the same
        warnings each time, but built once: the first reading, its group's, decides whether it is a region)."""
        known = self._image_references.get(item.position)
        if known is None:
            before = len(self.warnings)
            reference = self._image_reference(item, _is_region(item) if in_group else _has_region_concept(item))
            known = self._image_references[item.position] = (reference, self.warnings[before:])
        else:
            self.warnings.extend(known[1])
        return known[0]

    def _image_reference(self, item: ContentItem, region: bool) -> ImageReference | None:
        """`region`: whether a SCOORD or SCOORD3D is a region (a group's own, or one a measurement is inferred
        from) rather than another spatial item of its own concept."""
        concept = item.concept
        if isinstance(item, ScoordItem):
            images = [child for child in self.children(item) if isinstance(child, ImageItem)]
            instances = tuple(instance for child in images if (instance := self.instance(child)) is not None)
            if not instances:
                self.warn(WarningCode.REGION_WITHOUT_IMAGE, item, "SCOORD without an IMAGE it is selected from")
                return None
            if item.graphic_type == "MULTIPOINT":
                self.warn(WarningCode.MULTIPOINT_AS_POINTS, item, "MULTIPOINT written as one point region per point")
            self.use(item.position)
            self.used.update(child.position for child in images if child.reference is not None)
            return ImageReference(
                kind=ImageReferenceKind.IMAGE_REGION_2D if region else ImageReferenceKind.OTHER,
                position=item.position,
                concept=concept,
                instances=instances,
                graphic_type=item.graphic_type,
                graphic_data=float32_decimals(item.graphic_data),
            )
        if isinstance(item, Scoord3DItem):
            if not region:
                kind = ImageReferenceKind.OTHER
            elif same_concept(concept, codes.VOLUME_SURFACE):
                kind = ImageReferenceKind.VOLUME_SURFACE
            else:
                kind = ImageReferenceKind.IMAGE_REGION_3D
            self.use(item.position)
            return ImageReference(
                kind=kind,
                position=item.position,
                concept=concept,
                graphic_type=item.graphic_type,
                graphic_data=float32_decimals(item.graphic_data),
                frame_of_reference_uid=item.frame_of_reference_uid,
            )
        if isinstance(item, ImageItem | CompositeItem):
            instance = self.instance(item)
            if instance is None:
                return None
            table = IMAGE_KINDS if isinstance(item, ImageItem) else COMPOSITE_KINDS
            key = concept_key(concept)
            kind = ImageReferenceKind.OTHER if key is None else table.get(key, ImageReferenceKind.OTHER)
            purpose = IMAGE_PURPOSES.get(key) if key is not None and kind is ImageReferenceKind.OTHER else None
            subset: tuple[str, ...] = ()
            self.use(item.position)
            if kind in SEGMENT_REFERENCE_KINDS and instance.frame_numbers:
                self.warn_segment_frames(item, instance)
            if kind is ImageReferenceKind.REGION_IN_SPACE:
                numbers = [
                    (child.position, text)
                    for child in self.children(item)
                    if same_concept(child.concept, codes.REGION_IN_SPACE_ROI_NUMBER) and (text := _text_of(child))
                ]
                self.used.update(position for position, _ in numbers)
                subset = tuple(text for _, text in numbers)
            return ImageReference(
                kind=kind,
                position=item.position,
                concept=concept,
                instances=(instance,),
                subset=subset,
                purpose=purpose,
            )
        return None


# The tables below are looked up by `concept_key`, which is None for an item without a concept name.
ConceptKey = tuple[str, str] | None


class _GroupContext(TypedDict, total=False):
    """The `MeasurementGroup` fields its context items give."""

    tracking_identifier: str | None
    tracking_uid: str | None
    activity_session: str | None
    time_point: str | None
    source_series_uid: str | None
    finding_category: Code | None
    finding: Code | None
    method: Code | None


_GROUP_TEXT_FIELDS: dict[
    ConceptKey, Literal["tracking_identifier", "tracking_uid", "activity_session", "time_point", "source_series_uid"]
] = {
    codes.TRACKING_IDENTIFIER.key: "tracking_identifier",
    codes.TRACKING_UID.key: "tracking_uid",
    codes.ACTIVITY_SESSION.key: "activity_session",
    codes.TIME_POINT.key: "time_point",
    codes.SOURCE_SERIES_FOR_SEGMENTATION.key: "source_series_uid",
}
_GROUP_CODED_FIELDS: dict[ConceptKey, Literal["finding_category", "finding", "method"]] = {
    codes.FINDING_CATEGORY.key: "finding_category",
    codes.FINDING.key: "finding",
    codes.MEASUREMENT_METHOD.key: "method",
}
"""Children of a measurement group (TID 1410/1411/1501) that are its context, by concept → model field: the
value of any item for text fields, of CODE items for coded ones."""
_MAPPED_GROUP_TEXT_FIELDS = frozenset({"tracking_identifier", "tracking_uid", "time_point", "source_series_uid"})
"""The group text fields an output carries (Activity Session is read but reaches neither FHIR nor a table)."""

_ALGORITHM_FIELDS: dict[ConceptKey, Literal["name", "version", "family", "parameters", "manufacturer"]] = {
    codes.ALGORITHM_NAME.key: "name",
    codes.ALGORITHM_VERSION.key: "version",
    codes.ALGORITHM_FAMILY.key: "family",
    codes.ALGORITHM_PARAMETERS.key: "parameters",
    codes.ALGORITHM_MANUFACTURER.key: "manufacturer",
}
"""TID 4019 Algorithm Identification rows."""

_MEASUREMENT_CODED_FIELDS: dict[ConceptKey, Literal["derivation", "method"]] = {
    codes.DERIVATION.key: "derivation",
    codes.MEASUREMENT_METHOD.key: "method",
}
"""CODE children of a measurement (TID 300) that are its context (its Finding Sites: `finding_sites`)."""
_SITE_KEY = codes.FINDING_SITE.key
_ALGORITHM_NAME_KEY = codes.ALGORITHM_NAME.key
_TIME_POINT_KEYS = frozenset(c.key for c in codes.TIME_POINT_CONCEPTS)
_NOT_CONCEPT_MODIFIERS = frozenset({*_MEASUREMENT_CODED_FIELDS, *_ALGORITHM_FIELDS, _SITE_KEY})
"""HAS CONCEPT MOD CODEs under a NUM that are rows of their own, not open concept modifiers ($ModType). A
Laterality or Topographical modifier beside a measurement's one Finding Site is read as that site's (a
producer quirk); otherwise it is a concept modifier of the measurement (TID 300's $ModType examples)."""

_SITE_MODIFIER_FIELDS: dict[ConceptKey, Literal["laterality", "topographical_modifier"]] = {
    codes.LATERALITY.key: "laterality",
    codes.TOPOGRAPHICAL_MODIFIER.key: "topographical_modifier",
}
"""CODE items that qualify a Finding Site (TID 300/1419)."""

_REFERENCE_ITEMS = (ScoordItem, Scoord3DItem, ImageItem, CompositeItem)
_SPATIAL_ITEMS = (ScoordItem, Scoord3DItem)


def _is_concept_modifier(item: CodeItem) -> bool:
    """A HAS CONCEPT MOD CODE with a concept and a value: an open modifier unless its concept is a row of its own
    (the callers leave those out)."""
    return item.relationship is RelationshipType.HAS_CONCEPT_MOD and item.concept is not None and item.value is not None


def _is_region(item: ContentItem) -> bool:
    """Whether a group's spatial item is its region: CONTAINS, with a region concept name or none."""
    return item.relationship is RelationshipType.CONTAINS and _has_region_concept(item)


def _has_region_concept(item: ContentItem) -> bool:
    """A region concept name or none: a measurement's SCOORD (TID 320 INFERRED FROM) is its region then; one
    named otherwise ("Source of Measurement", 121112) is an image reference of its own concept (§12)."""
    return item.concept is None or concept_key(item.concept) in REGION_CONCEPTS


_DEVICE_OBSERVER_FIELDS: dict[ConceptKey, str] = {
    codes.DEVICE_OBSERVER_UID.key: "uid",
    codes.DEVICE_OBSERVER_NAME.key: "name",
    codes.DEVICE_OBSERVER_MANUFACTURER.key: "manufacturer",
    codes.DEVICE_OBSERVER_MODEL_NAME.key: "model_name",
    codes.DEVICE_OBSERVER_SERIAL_NUMBER.key: "serial_number",
    codes.DEVICE_OBSERVER_PHYSICAL_LOCATION.key: "physical_location",
}


# A plain dict rather than functools.cache: content item classes define __hash__ = None for their instances,
# which mypy takes for the class object itself not being Hashable.
_SLOT_NAMES: dict[type, tuple[str, ...]] = {}


def _slot_names(cls: type) -> tuple[str, ...]:
    names = _SLOT_NAMES.get(cls)
    if names is None:
        names = _SLOT_NAMES[cls] = tuple(name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ()))
    return names


def _with_relationship(item: ContentItem, relationship: RelationshipType | None) -> ContentItem:
    """A copy of a by-reference target under the referencing item's relationship; slot by slot, because
    `dataclasses.replace` (which re-runs `__init__` through `fields()`) costs several times more, and
    generated and real reports can reference hundreds of regions."""
    clone = object.__new__(type(item))
    for name in _slot_names(type(item)):
        object.__setattr__(clone, name, getattr(item, name))
    clone.relationship = relationship
    return clone


def _text_of(item: ContentItem) -> str | None:
    """The human-readable value of a TEXT, CODE, UIDREF or similar item."""
    if isinstance(item, CodeItem):
        return item.value.meaning or item.value.value if item.value else None
    value = getattr(item, "value", None)
    return value if isinstance(value, str) and value else None
