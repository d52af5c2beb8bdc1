"""Reads `corpus/MANIFEST.md`: the expected facts of each real and negative file, as its authors counted them
with pydicom, dcmqi and highdicom. Tests compare the mapping with these, never with numbers of their own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_PEERS = re.compile(r"peers: dcmqi (\d+)g/(\d+)m, highdicom (?:(\d+)g/(\d+)m|ERR[^,]*)")


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    section: str
    """"real" or "negative"."""
    sop_class: str
    template: str
    groups: int
    num_items: int
    content_items: int
    notes: str

    @property
    def peer_measurements(self) -> int | None:
        """Measurements found by dcmqi and highdicom, when both read the file and agree."""
        match = _PEERS.search(self.notes)
        if not match or match.group(4) is None:
            return None
        dcmqi_groups, dcmqi_measurements, hd_groups, hd_measurements = (int(g) for g in match.groups())
        if (dcmqi_groups, dcmqi_measurements) != (hd_groups, hd_measurements):
            return None
        return dcmqi_measurements


def read_manifest(corpus: Path) -> list[ManifestEntry]:
    entries = []
    section = ""
    for line in (corpus / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = {"## Real TID 1500 files": "real", "## Negative cases": "negative"}.get(line.strip(), "")
            continue
        if not section or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        entries.append(
            ManifestEntry(
                file=cells[0].strip("`"),
                section=section,
                sop_class=cells[3],
                template=cells[4],
                groups=int(cells[5]),
                num_items=int(cells[6]),
                content_items=int(cells[7]),
                notes=cells[10] if len(cells) > 10 else "",
            )
        )
    return entries
