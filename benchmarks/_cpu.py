"""CPU accounting from /proc, for benchmarks whose limit is CPU rather than waiting.

On a 2-vCPU machine the processor, PostgreSQL and the Kafka broker share the same cores, so wall
time alone cannot say which of them an optimisation helped; their CPU seconds per event can.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _command(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Sample:
    """CPU seconds so far: the whole machine (busy and total), PostgreSQL's processes, Java's
    (the Kafka broker), and this process."""

    machine_busy: float
    machine_total: float
    postgres: float
    java: float
    this_process: float

    def __sub__(self, other: Sample) -> Sample:
        return Sample(
            self.machine_busy - other.machine_busy,
            self.machine_total - other.machine_total,
            self.postgres - other.postgres,
            self.java - other.java,
            self.this_process - other.this_process,
        )


def sample() -> Sample:
    # /proc/stat's first line: user nice system idle iowait irq softirq steal …, in ticks
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]
    postgres = java = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        command = _command(pid)
        if command.startswith("postgres"):
            postgres += process_cpu_seconds(int(pid))
        elif command == "java":
            java += process_cpu_seconds(int(pid))
    return Sample(
        (sum(ticks) - idle) / _TICK,
        sum(ticks) / _TICK,
        postgres,
        java,
        process_cpu_seconds(os.getpid()),
    )


def report(delta: Sample, events: int) -> str:
    """Lines saying where the CPU went, per event, over an interval that handled `events`."""

    def per_event(seconds: float) -> str:
        return f"{seconds / events * 1e6:5.0f} µs/event"

    cores = os.cpu_count() or 1
    busy = delta.machine_busy / delta.machine_total if delta.machine_total else 0.0
    other = delta.machine_busy - delta.postgres - delta.java - delta.this_process
    return "\n".join(
        [
            f"machine CPU:       {per_event(delta.machine_busy)} ({busy:.0%} of {cores} cores busy)",
            f"  this process:    {per_event(delta.this_process)}",
            f"  PostgreSQL:      {per_event(delta.postgres)}",
            f"  Kafka broker:    {per_event(delta.java)}",
            f"  everything else: {per_event(other)}",
        ]
    )
