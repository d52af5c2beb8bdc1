"""Devices: the General Equipment of the SR (dicom-general-equipment), one Device per distinct TID 4019
algorithm (algorithm-identification), whose parent is that equipment, the TID 1004 device observers of the
observation context, and (STU1) the Participant Sequence devices (dicom-participant-device)."""

from __future__ import annotations

import re

from ..document import Equipment, Participant
from ..errors import WarningCode
from ..tid1500.model import Algorithm, DeviceObserver
from . import profiles
from .context import ReportContext, meta
from .datatypes import fixed, uid_identifier
from .ids import resource_id

GS1_DEVICE_IDENTIFIER = re.compile(r"[({]01[)}](\d{14})")
GS1_ISSUER = "http://hl7.org/fhir/NamingSystem/gs1-di"


def _udi_carrier(udi: str) -> dict:
    carrier: dict = {}
    match = GS1_DEVICE_IDENTIFIER.search(udi)
    if match:
        carrier["deviceIdentifier"] = match.group(1)
        carrier["issuer"] = GS1_ISSUER
    carrier["carrierHRF"] = udi
    return carrier


def equipment_key(equipment: Equipment) -> tuple[str, ...]:
    if equipment.device_uid:
        return ("uid", equipment.device_uid)
    return (
        "attributes",
        equipment.manufacturer or "",
        equipment.model_name or "",
        equipment.serial_number or "",
        "\\".join(equipment.software_versions),
        equipment.station_name or "",
    )


def _device(resource_id: str, profile: str, equipment: Equipment) -> dict:
    """A Device of General Equipment attributes (the equipment's, or a participant device's, which has no UDI
    and no software versions)."""
    device: dict = {"resourceType": "Device", "id": resource_id, "meta": meta(profile)}
    if equipment.device_uid:
        device["identifier"] = [uid_identifier(equipment.device_uid)]
    # R5 requires deviceIdentifier and issuer: only UDIs whose issuer can be told (GS1) are carried.
    carriers = [c for u in equipment.udi if "deviceIdentifier" in (c := _udi_carrier(u.unique_device_identifier))]
    if carriers:
        device["udiCarrier"] = carriers
    if equipment.manufacturer:
        device["manufacturer"] = equipment.manufacturer
    if equipment.serial_number:
        device["serialNumber"] = equipment.serial_number
    if equipment.model_name:
        device["displayName"] = equipment.model_name
    if equipment.software_versions:
        device["version"] = [{"value": v} for v in equipment.software_versions]
    return device


def build_equipment(context: ReportContext) -> dict:
    equipment = context.report.document.equipment
    device_id = resource_id("Device", "equipment", *equipment_key(equipment))
    return context.add(_device(device_id, profiles.GENERAL_EQUIPMENT, equipment))


def build_algorithm(context: ReportContext, algorithm: Algorithm, equipment: dict) -> dict:
    family = context.codings.coding(algorithm.family) if algorithm.family else None
    key = (
        equipment["id"],
        algorithm.name,
        algorithm.version or "",
        f"{family['system']}|{family['code']}" if family else "",
        *algorithm.parameters,
        # Only when present, so that the ids of algorithms without one stay as they were.
        *((f"manufacturer|{algorithm.manufacturer}",) if algorithm.manufacturer else ()),
    )
    device: dict = {
        "resourceType": "Device",
        "id": resource_id("Device", "algorithm", *key),
        "meta": meta(profiles.ALGORITHM_IDENTIFICATION),
        "displayName": algorithm.name,
    }
    if algorithm.manufacturer:
        device["manufacturer"] = algorithm.manufacturer
    if family:
        device["type"] = [{"coding": [family]}]
    if algorithm.version:
        device["version"] = [{"value": algorithm.version}]
    if algorithm.parameters:
        device["property"] = [
            {"type": fixed(profiles.DEVICE_PROPERTY_ALGORITHM_PARAMETERS), "valueString": parameter}
            for parameter in algorithm.parameters
        ]
    device["parent"] = context.ref(equipment)
    return device


def observer_key(observer: DeviceObserver) -> tuple[str, ...]:
    """What identifies a device observer: its UID, else its name, manufacturer and model (its Device's id)."""
    if observer.uid:
        return ("uid", observer.uid)
    return ("attributes", observer.name or "", observer.manufacturer or "", observer.model_name or "")


def _distinct(observers: tuple[DeviceObserver, ...]) -> list[DeviceObserver]:
    """One per device: an observer context can name the same device twice (ids would collide)."""
    seen: dict[tuple[str, ...], DeviceObserver] = {}
    for observer in observers:
        seen.setdefault(observer_key(observer), observer)
    return list(seen.values())


def _participant_equipment(participant: Participant) -> Equipment:
    return Equipment(
        manufacturer=participant.manufacturer,
        model_name=participant.model_name,
        device_uid=participant.device_uid,
        serial_number=participant.serial_number,
    )


def _is_general_equipment(participant: Equipment, equipment: Equipment) -> bool:
    """The Document IE ConceptMap: no extra Device for a participant that is the Equipment IE device."""
    if participant.device_uid or equipment.device_uid:
        return participant.device_uid == equipment.device_uid
    return (participant.manufacturer, participant.model_name) == (equipment.manufacturer, equipment.model_name)


def build_participant_device(participant: Equipment) -> dict:
    device_id = resource_id("Device", "participant", *equipment_key(participant))
    return _device(device_id, profiles.PARTICIPANT_DEVICE, participant)


def participant_device(context: ReportContext, equipment: dict) -> dict | None:
    """STU1: the first Participant Sequence DEV entry as a Device; None when that entry is the equipment
    itself (the equipment then stays the fallback)."""
    own = context.report.document.equipment
    for participant in context.report.document.participants:
        if (participant.observer_type or "").upper() != "DEV":
            continue
        identity = _participant_equipment(participant)
        if not (identity.device_uid or identity.manufacturer or identity.model_name):
            continue
        if _is_general_equipment(identity, own):
            return None
        return context.add(build_participant_device(identity))
    return None


def build_device_observer(context: ReportContext, observer: DeviceObserver) -> dict:
    """A TID 1004 Device Observer: STU1's participant device profile (the observer context is where the SR
    names who made its observations), the general equipment profile under the ballot, which has no other
    profile `Observation.device` may name (docs/mapping-decisions.md §16)."""
    profile = profiles.PARTICIPANT_DEVICE if context.facts.participants else profiles.GENERAL_EQUIPMENT
    device: dict = {
        "resourceType": "Device",
        "id": resource_id("Device", "observer", *observer_key(observer)),
        "meta": meta(profile),
    }
    if observer.uid:
        device["identifier"] = [uid_identifier(observer.uid)]
    display = observer.name or observer.model_name
    if display:
        device["displayName"] = display
    if observer.manufacturer:
        device["manufacturer"] = observer.manufacturer
    if observer.serial_number:
        device["serialNumber"] = observer.serial_number
    if observer.model_name:
        device["modelNumber"] = observer.model_name
    if observer.name:
        device["name"] = [{"value": observer.name, "type": "user-friendly-name"}]
    if observer.physical_location:
        # R5 `location` is a Reference(Location); the SR names the place only in words.
        device["location"] = {"display": observer.physical_location}
    return device


class DeviceRegistry:
    """One Device per distinct algorithm in a report, created on first use."""

    def __init__(self, context: ReportContext) -> None:
        self.context = context
        self.equipment = build_equipment(context)
        self._algorithms: dict[Algorithm, dict] = {}
        self._references: dict[int, tuple[Algorithm, dict]] = {}
        """Reference per algorithm object, by id(): hashing a frozen Algorithm (parameters and all) for
        every Observation cost more than the rest of the lookup. The entry holds the object, so the id
        stays its own."""
        self._use_inherited = context.options.device_fallback == "inherit"
        equipment = context.ref(self.equipment)
        observers = [context.add(build_device_observer(context, o)) for o in _distinct(context.report.device_observers)]
        if len(observers) > 1:
            context.warn(
                WarningCode.UNMAPPED_CONTENT,
                context.report.device_observers[1].position,
                f"{len(observers)} device observers: Observation.device (0..1) names the first; all are Devices",
            )
        participant = participant_device(context, self.equipment) if context.facts.participants else None
        if observers:
            observer = context.ref(observers[0])
            # STU1's derived measurement profile names no participant device.
            self._fallback = (equipment if context.facts.participants else observer, observer)
        else:
            self._fallback = (equipment, context.ref(participant) if participant is not None else equipment)

    def reference_for(self, algorithm: Algorithm | None, *, own: bool, derived: bool = False) -> dict:
        """`Observation.device`: the item's algorithm (own, or inherited when the options say so), else the
        participant device (STU1; not for derived measurements, whose profile does not allow it), else the
        equipment."""
        if algorithm is None or not (own or self._use_inherited):
            return self._fallback[0 if derived else 1]
        known = self._references.get(id(algorithm))
        if known is not None and known[0] is algorithm:
            return known[1]
        device = self._algorithms.get(algorithm)
        if device is None:
            device = self.context.add(build_algorithm(self.context, algorithm, self.equipment))
            self._algorithms[algorithm] = device
        reference = self.context.ref(device)
        self._references[id(algorithm)] = (algorithm, reference)
        return reference
