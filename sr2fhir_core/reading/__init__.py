"""Reading: bytes of one DICOM instance → `SRDocument` with its typed content tree.

`read_document` is the only entry point the rest of the core uses; which parser runs behind it is an
implementation detail, so a faster reader can replace pydicom on the hot path without anything above
this package changing.
"""

from __future__ import annotations

from ..document import SRDocument
from .pydicom_reader import read_document as read_with_pydicom


def read_document(data: bytes) -> SRDocument:
    return read_with_pydicom(data)


__all__ = ["read_document", "read_with_pydicom"]
