"""Whether a process of this host is alive: for the locks that name their holder's process id (the class
archive's dump lock, the output's lock)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
