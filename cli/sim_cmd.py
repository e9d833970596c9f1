"""``kv sim``: run one seeded cluster simulation (or a range of seeds) and report violations.

Exit codes: 0 every run passed all checks; 1 a safety, liveness or history
violation was found (the seed, a replay command and the last events are
printed); 2 bad input (click's usage errors).
"""

from __future__ import annotations

import sys
import time

import click

from kvstore.raft import RaftCore
from kvstore.raft.planted import PLANTED_VARIANTS
from kvstore.sim import FAULT_KINDS, SimConfig, Simulation, SimViolation, default_config, parse_faults, run_simulation
from kvstore.sim.pretty import format_columns

EXIT_VIOLATION = 1

EPILOG = f"""\b
Fault kinds: {", ".join(FAULT_KINDS)} (or "all", or "none").
Exit codes: 0 no violation, 1 violation found, 2 bad input.

\b
Examples:
  kv sim --nodes 5 --seed 7 --ticks 2000 --faults all
  kv sim --seed 7 --faults drop,partition --show-trace 40
  kv sim --seed 0 --seeds 100 --faults all        # a small sweep
  kv sim --seed 3 --history h.jsonl --trace-out t.jsonl
"""


def _faults(_ctx: click.Context, _param: click.Parameter, value: str) -> frozenset[str]:
    try:
        return parse_faults(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("sim", epilog=EPILOG)
@click.option("--nodes", type=click.IntRange(1, 15), default=5, show_default=True, help="Cluster size.")
@click.option("--seed", type=int, default=0, show_default=True, help="The seed that drives everything.")
@click.option("--ticks", type=click.IntRange(1), default=2000, show_default=True,
              help="Virtual ticks of faults before healing and the liveness check.")
@click.option("--faults", default="all", show_default=True, callback=_faults,
              help='Comma-separated fault kinds, "all" or "none".')
@click.option("--clients", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Concurrent client processes (1 gives a history the built-in checker verifies).")
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Run this many consecutive seeds starting at --seed.")
@click.option("--show-trace", type=click.IntRange(0), default=0, metavar="N",
              help="Print the last N trace events, one column per node.")
@click.option("--history", "history_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the client history (JSON lines) of the last run here.")
@click.option("--trace-out", type=click.Path(dir_okay=False, writable=True),
              help="Write the full trace (JSON lines) of the last run here.")
@click.option("--planted", type=click.Choice(sorted(PLANTED_VARIANTS)),
              help="Run a deliberately broken core, to watch the checks catch it (teaching).")
def sim(nodes: int, seed: int, ticks: int, faults: frozenset[str], clients: int, seeds: int, show_trace: int,
        history_path: str | None, trace_out: str | None, planted: str | None) -> None:
    """Simulate a Raft cluster deterministically and check it after every event.

    One seed drives the network (drop, delay, reorder, duplicate, partitions),
    crashes, lost un-fsynced writes, clients and the clock, so a failing seed
    replays exactly. Prints a summary; exits 1 on any violation.
    """
    factory = PLANTED_VARIANTS[planted] if planted else RaftCore
    failed = 0
    virtual_ticks = 0.0
    node_ticks = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for s in range(seed, seed + seeds):
        cfg = default_config(nodes=nodes, seed=s, faults=faults, clients=clients)
        result = run_simulation(cfg, ticks=ticks, core_factory=factory)
        virtual_ticks += result.virtual_ticks
        node_ticks += result.stats.ticks
        click.echo(result.summary())
        ids = [f"n{i}" for i in range(1, nodes + 1)]
        if not result.ok:
            failed += 1
            kinds = ",".join(sorted(faults)) or "none"
            extra = f" --planted {planted}" if planted else ""
            click.echo(f"  replay: kv sim --nodes {nodes} --seed {s} --ticks {ticks} --faults {kinds} "
                       f"--clients {clients}{extra}", err=True)
            click.echo(format_columns(result.last_events[-(show_trace or 30):], ids), err=True)
        elif show_trace:
            click.echo(format_columns(result.last_events[-show_trace:], ids))
    if history_path or trace_out:
        last = default_config(nodes=nodes, seed=seed + seeds - 1, faults=faults, clients=clients)
        _write_files(last, ticks, history_path, trace_out, factory)
    elapsed = time.perf_counter() - started
    cpu = max(time.process_time() - cpu_started, 1e-9)
    click.echo(f"{seeds - failed}/{seeds} runs passed in {elapsed:.1f}s ({cpu:.1f}s CPU): "
               f"{virtual_ticks / cpu:,.0f} simulated cluster ticks and {node_ticks / cpu:,.0f} node ticks "
               "per CPU second")
    if failed:
        sys.exit(EXIT_VIOLATION)


def _write_files(cfg: SimConfig, ticks: int, history_path: str | None, trace_out: str | None,
                 factory: type[RaftCore]) -> None:
    """Re-run the last seed keeping the whole trace (a replay is identical) and write the files."""
    simulation = Simulation(cfg, keep_trace=None, core_factory=factory)
    try:
        simulation.run_for(ticks)
        simulation.stop_faults()
        simulation.check_liveness()
        simulation.run_for(cfg.client_timeout_ticks)
    except SimViolation:
        pass  # already reported by the first run; the files show what happened
    if history_path:
        with open(history_path, "w", encoding="utf-8") as fh:
            simulation.history.write_jsonl(fh)
    if trace_out:
        with open(trace_out, "w", encoding="utf-8") as fh:
            for ev in simulation.tracer.events:
                fh.write(ev.to_json() + "\n")
