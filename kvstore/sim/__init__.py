"""Deterministic cluster simulator for the Raft core: one seed drives network, disk, clock and clients.

Start with :mod:`kvstore.sim.cluster` (theory of operation). ``run_simulation``
runs one seeded fault schedule and reports violations with the seed and the
last trace events; ``Simulation`` can also be driven step by step.
"""

from kvstore.sim.checks import ClusterChecker, SimViolation
from kvstore.sim.cluster import (
    FAULT_KINDS,
    PARTITION_SHAPES,
    ClientOp,
    SimConfig,
    SimResult,
    SimStats,
    Simulation,
    default_config,
    history_jsonl,
    parse_faults,
    run_simulation,
)
from kvstore.sim.disk import SimDisk
from kvstore.sim.history import CheckResult, History, HistoryChecker, check_sequential
from kvstore.sim.kv import KVStateMachine, encode_command

__all__ = [
    "FAULT_KINDS",
    "PARTITION_SHAPES",
    "CheckResult",
    "ClientOp",
    "ClusterChecker",
    "History",
    "HistoryChecker",
    "KVStateMachine",
    "SimConfig",
    "SimDisk",
    "SimResult",
    "SimStats",
    "SimViolation",
    "Simulation",
    "check_sequential",
    "default_config",
    "encode_command",
    "history_jsonl",
    "parse_faults",
    "run_simulation",
]
