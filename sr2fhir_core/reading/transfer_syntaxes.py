"""Transfer syntaxes an SR can arrive in, and the typed rejection for the ones no reader can decode."""

from __future__ import annotations

from ..errors import RejectionReason, SRRejected

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
STANDARD_ROOT = "1.2.840.10008.1.2"
"""Every standard transfer syntax; the compressed ones encode the data set as explicit VR little endian,
which is all an SR (no pixel data) needs."""


def check_transfer_syntax(uid: str | None) -> None:
    """A data set without file meta (uid None) is read as implicit VR little endian; a private transfer
    syntax has an encoding no reader here can know."""
    if uid is not None and not uid.startswith(STANDARD_ROOT):
        raise SRRejected(RejectionReason.UNSUPPORTED_ENCODING, "a private Transfer Syntax UID (0002,0010)")
