"""CPU time of the whole machine, to tell how much other work shared it while something was measured."""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal), from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def other_cores(busy_before: float | None, busy_after: float | None, own_cpu: float, wall: float) -> float | None:
    """Average number of cores that work other than our own kept busy over `wall` seconds."""
    if busy_before is None or busy_after is None or wall <= 0:
        return None
    return round(max(busy_after - busy_before - own_cpu, 0.0) / wall, 2)
