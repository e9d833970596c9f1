"""jepsen-lite: fault injection, histories and a linearizability checker.

Modules (flat; each opens with its theory of operation):

- :mod:`jepsen_lite.history` — the JSON-lines history format, pairing, :class:`HistoryRecorder`;
- :mod:`jepsen_lite.formats` — readers for ``jsonl``, Jepsen register logs and EDN kv histories;
- :mod:`jepsen_lite.models` — sequential specifications (register, append-string);
- :mod:`jepsen_lite.checker` — the linearizability checker (the ``lin-checker`` lab);
- :mod:`jepsen_lite.sets` — the set / unique-append checker; :mod:`jepsen_lite.replicas` — replicas agree;
- :mod:`jepsen_lite.report` — check a whole history, write a run folder's reports (the runner's entry);
- :mod:`jepsen_lite.timeline` — ``timeline.html``; :mod:`jepsen_lite.plots` — ``latency.png``, ``rate.png``;
- :mod:`jepsen_lite.synthetic` — seeded synthetic histories; :mod:`jepsen_lite.bench` — the benchmark;
- :mod:`jepsen_lite.testing` — a history builder and a brute-force checker for tests;
- :mod:`jepsen_lite.runner` — ``jepsen-lite run``: a bounded test against a local cluster;
  :mod:`jepsen_lite.workloads` — its logical clients; :mod:`jepsen_lite.nemesis` — its faults;
- :mod:`jepsen_lite.cli` — the ``jepsen-lite`` command.

The runner's names (``RunOptions``, ``RunResult``, ``run``, ``Nemesis``, ``partition_plan``)
are re-exported lazily: importing them pulls in the gRPC client, which checking a
history does not need.
"""

import importlib

from jepsen_lite.checker import (
    LINEARIZABLE,
    NOT_LINEARIZABLE,
    UNKNOWN,
    CheckResult,
    KeyResult,
    Violation,
    check_key,
    check_operations,
)
from jepsen_lite.formats import FORMATS, load
from jepsen_lite.history import (
    NEMESIS_PROCESS,
    Event,
    History,
    HistoryError,
    HistoryRecorder,
    NemesisInterval,
    Operation,
    load_jsonl,
    pair_events,
    parse_jsonl,
    read_jsonl,
    write_jsonl,
)
from jepsen_lite.models import KVAppendModel, Model, RegisterModel
from jepsen_lite.plots import latency_png, rate_png
from jepsen_lite.replicas import ReplicaResult, check_replicas
from jepsen_lite.report import HistoryVerdict, check_history, write_reports
from jepsen_lite.sets import SetKeyResult, SetResult, check_sets
from jepsen_lite.timeline import render_timeline

__all__ = [
    "FORMATS",
    "LINEARIZABLE",
    "NEMESIS_PROCESS",
    "NOT_LINEARIZABLE",
    "UNKNOWN",
    "CheckResult",
    "Event",
    "History",
    "HistoryError",
    "HistoryRecorder",
    "HistoryVerdict",
    "KVAppendModel",
    "KeyResult",
    "Model",
    "NemesisInterval",
    "Operation",
    "RegisterModel",
    "ReplicaResult",
    "SetKeyResult",
    "SetResult",
    "Violation",
    "check_history",
    "check_key",
    "check_operations",
    "check_replicas",
    "check_sets",
    "latency_png",
    "load",
    "load_jsonl",
    "pair_events",
    "parse_jsonl",
    "rate_png",
    "read_jsonl",
    "render_timeline",
    "write_jsonl",
    "write_reports",
]

_LAZY = {
    "RunOptions": "jepsen_lite.runner",
    "RunResult": "jepsen_lite.runner",
    "run": "jepsen_lite.runner",
    "Nemesis": "jepsen_lite.nemesis",
    "partition_plan": "jepsen_lite.nemesis",
}


def __getattr__(name: str) -> object:
    """The runner's names, imported on first use (see the module docstring)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jepsen_lite' has no attribute {name!r}")
