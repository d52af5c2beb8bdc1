"""Deterministic resource ids: name-based UUIDs (RFC 4122 version 5) of stable DICOM keys.

Resources that belong to one SR are keyed by its SOP Instance UID and the content item's position, so a
re-run gives the same ids. Resources shared between SRs (Patient, ImagingStudy, ServiceRequest, Devices,
Practitioner) are keyed by what identifies them in DICOM, so two SRs give the same id and a job can
deduplicate them. Hashing also keeps patient identifiers out of resource ids and URLs.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache

NAMESPACE = uuid.UUID("6f1c1d55-2a3e-5d0b-9b7e-5e2f0c5a7d11")
"""sr2fhir's own namespace; changing it changes every id the project has ever written."""
_NAMESPACE_BYTES = NAMESPACE.bytes

DOCUMENT_SCOPED_TYPES = frozenset({"Observation", "ImagingSelection", "BodyStructure"})
"""Resource types whose ids are `document_resource_id`s (made from the report's SOP Instance UID): only a file
holding the same SOP instance can produce one. A job's deletion lookup relies on it; every other type is shared."""


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(NAMESPACE, name))`, three times faster: ids are made for every Observation."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def resource_id(resource_type: str, *key: str) -> str:
    return _uuid5("\x1f".join((resource_type, *key)))


@lru_cache(maxsize=16384)
def document_resource_id(resource_type: str, sop_instance_uid: str, position: tuple[int, ...], role: str = "") -> str:
    """Id of a resource made from one content item (`role` tells apart several made from the same item).

    Cached: the FHIR builders and the row builder both name every Observation of a report."""
    return _uuid5("\x1f".join((resource_type, sop_instance_uid, ".".join(map(str, position)), role)))
