"""``lasp-edge emulate``: a fleet of real and virtual devices under seeded faults, with an oracle.

Modules, from the bottom up: ``faults`` (the fault names and the seeded schedule, sans-IO),
``proxy`` (the fault-injecting TCP proxy), ``services`` and ``stack`` (broker, gateway and
aggregator processes), ``apps`` (running a firmware example's own code on CPython; one
``app_<name>`` module per example says what its oracle checks),
``virtual`` and ``devices`` (the two kinds of device), ``oracle``, ``report`` and ``engine``
(the run). The user guide is docs/EMULATOR.md; the pytest plugin is ``lasp_edge.testing``.
"""

from lasp_gateway.emulator.engine import Emulation, EmulationConfig, emulate
from lasp_gateway.emulator.faults import FaultSpec, FaultSpecError, parse_faults
from lasp_gateway.emulator.report import Report

__all__ = [
    "Emulation",
    "EmulationConfig",
    "FaultSpec",
    "FaultSpecError",
    "Report",
    "emulate",
    "parse_faults",
]
