"""The ``jepsen-lite`` command.

``jepsen-lite check [--format jsonl|jepsen-log|edn-kv] FILE`` checks one history and
exits with:

====  ===========================================================
0     linearizable (and every set valid)
1     not linearizable (or a set lost, duplicated or invented an element)
2     unknown (a key's time budget ran out, or a set was never read)
3     the file could not be read or is malformed (one line on stderr)
4     bad command-line usage
====  ===========================================================

``jepsen-lite run`` starts a local cluster, runs a workload under a seeded fault schedule,
checks the history and writes a run folder (exit 0 pass, 1 violation, 2 unknown).
``jepsen-lite gen`` writes a synthetic register history (for trying things out and
for the benchmark), and ``jepsen-lite bench`` measures the checker.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

import click
from jepsen_lite.checker import LINEARIZABLE, NOT_LINEARIZABLE, UNKNOWN, CheckResult
from jepsen_lite.formats import FORMATS, load
from jepsen_lite.history import History, HistoryError, write_jsonl
from jepsen_lite.report import check_history, write_reports
from jepsen_lite.sets import SetResult
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.timeline import render_timeline

EXIT_OK: Final = 0
EXIT_NOT_LINEARIZABLE: Final = 1
EXIT_UNKNOWN: Final = 2
EXIT_BAD_INPUT: Final = 3
EXIT_USAGE: Final = 4
MAX_EXPLAINED_VIOLATIONS: Final = 5  # beyond this the terminal only lists keys; results.json has them all


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """jepsen-lite: check histories for linearizability and lost writes."""


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True, help="history format")
@click.option(
    "--time-limit-s", type=click.FloatRange(min=0.0), default=10.0, show_default=True,
    help="search budget per key; when it runs out the key is unknown (never a pass)",
)
@click.option("--timeline", "timeline_path", type=click.Path(path_type=Path), help="write timeline.html here")
@click.option("--results", "results_path", type=click.Path(path_type=Path), help="write results.json here")
@click.option(
    "--report-dir", type=click.Path(path_type=Path),
    help="write a run folder's reports here: history.jsonl, results.json, timeline.html, latency.png, rate.png",
)
def check(
    file: Path,
    fmt: str,
    time_limit_s: float,
    timeline_path: Path | None,
    results_path: Path | None,
    report_dir: Path | None,
) -> int:
    """Check one history FILE (or a run folder's history.jsonl); exit 0 linearizable, 1 not, 2 unknown, 3 unreadable."""
    started = time.monotonic()
    if file.is_dir() and fmt == "jsonl":
        file = file / "history.jsonl"
    history, model = load(file, fmt)
    result = check_history(history, model, time_limit_s_per_key=time_limit_s)
    elapsed = time.monotonic() - started
    _print_report(file, fmt, history, result.linearizability, result.sets, result.verdict, elapsed)
    if results_path is not None:
        _write(results_path, json.dumps({"file": str(file), "format": fmt, **result.to_json()}, indent=2) + "\n")
    if timeline_path is not None:
        page = render_timeline(
            history, linearizability=result.linearizability, sets=result.sets, title=f"jepsen-lite: {file.name}"
        )
        _write(timeline_path, page)
    if report_dir is not None:
        write_reports(report_dir, history, result, title=f"jepsen-lite: {file.name}")
    return {LINEARIZABLE: EXIT_OK, NOT_LINEARIZABLE: EXIT_NOT_LINEARIZABLE}.get(result.verdict, EXIT_UNKNOWN)


def _print_report(
    file: Path,
    fmt: str,
    history: History,
    lin: CheckResult | None,
    sets: SetResult | None,
    verdict: str,
    elapsed: float,
) -> None:
    click.echo(
        f"{file} ({fmt}): {len(history.events)} events, {len(history.operations)} operations, "
        f"{len(history.keys())} keys, checked in {elapsed:.2f} s"
    )
    if lin is not None:
        counts = {v: sum(1 for k in lin.keys if k.verdict == v) for v in (LINEARIZABLE, NOT_LINEARIZABLE, UNKNOWN)}
        click.echo(
            f"  linearizability ({lin.model}): {lin.verdict} — {counts[LINEARIZABLE]} linearizable, "
            f"{counts[NOT_LINEARIZABLE]} not, {counts[UNKNOWN]} unknown key(s)"
        )
        for violation in lin.violations[:MAX_EXPLAINED_VIOLATIONS]:
            click.echo("    " + violation.explain().replace("\n", "\n    "))
        unknown = [k.key for k in lin.keys if k.verdict == UNKNOWN]
        if unknown:
            click.echo(f"    time budget ran out on: {', '.join(unknown[:20])}")
    if sets is not None:
        click.echo(f"  sets: {sets.verdict}")
        for key in sets.keys:
            if key.verdict != "valid":
                click.echo(
                    f"    set {key.key!r}: {key.verdict}; lost {list(key.lost)}, duplicated {list(key.duplicated)}, "
                    f"unexpected {list(key.unexpected)}"
                )
    click.echo(f"verdict: {verdict}")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None


@cli.command()
@click.option("--ops", type=click.IntRange(min=1), default=10_000, show_default=True, help="client operations in all")
@click.option("--keys", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--processes-per-key", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--violations", type=click.IntRange(min=0), default=0, show_default=True, help="keys with a stale read")
@click.option("--faults", type=click.IntRange(min=0), default=0, show_default=True, help="cosmetic nemesis intervals")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="history.jsonl to write")
def gen(ops: int, keys: int, processes_per_key: int, violations: int, faults: int, seed: int, out: Path) -> int:
    """Write a synthetic register history (linearizable unless --violations > 0)."""
    synthetic = simulate_register(
        seed=seed, ops=ops, keys=keys, processes_per_key=processes_per_key, violations=violations, faults=faults
    )
    try:
        with open(out, "w", encoding="utf-8") as fh:
            write_jsonl(synthetic.events, fh)
    except OSError as exc:
        raise click.FileError(str(out), hint=exc.strerror or str(exc)) from None
    planted = ", ".join(synthetic.planted_keys) or "none"
    click.echo(f"wrote {len(synthetic.events)} events to {out} (seed {seed}; planted violations in: {planted})")
    return EXIT_OK


@cli.command()
@click.option("--ops", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--keys", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="histories per shape")
@click.option("--update-doc", type=click.Path(path_type=Path), help="rewrite the checker section of this file")
def bench(ops: int, keys: int, seeds: int, update_doc: Path | None) -> int:
    """Measure the checker on synthetic histories, with and without planted violations."""
    from jepsen_lite.bench import render_markdown, run_bench, update_section

    rows = run_bench(ops=ops, keys=keys, seeds=seeds, progress=click.echo)
    text = render_markdown(rows, ops=ops, keys=keys, seeds=seeds)
    click.echo(text)
    if update_doc is not None:
        update_section(update_doc, text)
    return EXIT_OK if all(row.correct for row in rows) else EXIT_NOT_LINEARIZABLE


def _section(name: str, settings: str) -> str:
    """``a = 1; b = 2`` as a TOML section ``[name]`` (empty text when there are no settings)."""
    lines = [part.strip() for part in settings.split(";") if part.strip()]
    return f"\n[{name}]\n" + "".join(f"{line}\n" for line in lines) if lines else ""


@cli.command("run")
@click.option("--nemesis", default="partition,kill", show_default=True,
              help="comma-separated fault kinds (partition, partition-<shape>, kill, pause, power-loss, "
                   "power-loss-all, bitflip, clock-skew, kill-voter, deposed-leader), or 'none'")
@click.option("--time", "time_s", type=click.FloatRange(min=1.0), default=60.0, show_default=True,
              help="seconds of clients and faults")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--workload", type=click.Choice(["register", "set", "mixed", "delete"]), default="register",
              show_default=True)
@click.option("--nodes", type=click.IntRange(min=1, max=9), default=3, show_default=True)
@click.option("--keys", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--clients-per-key", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--fault-s", type=click.FloatRange(min=0.1), default=4.0, show_default=True)
@click.option("--heal-s", type=click.FloatRange(min=0.1), default=3.0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="the run folder (default: a new temporary folder)")
@click.option("--planted", "planted_bug", help="a node planted bug name ([testing] planted_bug)")
@click.option(
    "--raft", "raft_toml", default="", help="extra [raft] settings, ';' between them (e.g. 'check_quorum = false')"
)
@click.option(
    "--storage", "storage_toml", default="",
    help="node [storage] settings, ';' between them (e.g. 'memtable_bytes = 65536; level1_target_bytes = 1')",
)
@click.option("--snapshot-threshold", "snapshot_threshold_entries", type=click.IntRange(min=1), default=1000,
              show_default=True, help="Raft snapshot threshold in entries (large: the final log check sees more)")
@click.option("--work-dir", type=click.Path(path_type=Path), help="the cluster's folder (default: a temporary one)")
@click.option("--keep-cluster", is_flag=True, help="keep the cluster's data folder after the run")
def run_command(
    nemesis: str,
    time_s: float,
    seed: int,
    workload: str,
    nodes: int,
    keys: int,
    clients_per_key: int,
    fault_s: float,
    heal_s: float,
    out: Path | None,
    planted_bug: str | None,
    raft_toml: str,
    storage_toml: str,
    snapshot_threshold_entries: int,
    work_dir: Path | None,
    keep_cluster: bool,
) -> int:
    """Start a local cluster, run a workload under faults, check it; exit 0 pass, 1 violation, 2 unknown."""
    from jepsen_lite.nemesis import parse_kinds
    from jepsen_lite.runner import RunOptions
    from jepsen_lite.runner import run as run_test

    from kvstore.errors import KVError

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None  # SIGTERM cleans up like Ctrl-C
    try:
        kinds = () if nemesis.strip() in ("", "none") else parse_kinds(nemesis)
        options = RunOptions(
            nemesis=kinds, time_s=time_s, seed=seed, workload=workload, nodes=nodes, keys=keys,
            clients_per_key=clients_per_key, fault_s=fault_s, heal_s=heal_s, out=out, planted_bug=planted_bug,
            raft_toml="".join(f"{part.strip()}\n" for part in raft_toml.split(";") if part.strip()),
            extra_config=_section("storage", storage_toml), snapshot_threshold_entries=snapshot_threshold_entries,
            work_dir=work_dir, keep_cluster=keep_cluster,
        )
        result = run_test(options, echo=click.echo)
    except HistoryError:
        raise
    except KVError as exc:
        click.echo(f"jepsen-lite run: error: {exc}", err=True)
        return EXIT_BAD_INPUT
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    click.echo(result.table())
    return result.exit_code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (never raises for bad input)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="jepsen-lite", standalone_mode=False)
    except HistoryError as exc:
        click.echo(f"jepsen-lite: error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except click.FileError as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        click.echo("jepsen-lite: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script ``jepsen-lite``."""
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
