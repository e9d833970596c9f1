"""Server CPU per operation, node by node: a quick check while tuning the replicated node.

Usage::

    .venv/bin/python bench/_node_cpu.py                       # put x1, put x64, get x64; 5 s each
    .venv/bin/python bench/_node_cpu.py --workloads put64 --seconds 8 --py-spy /tmp/prof
    .venv/bin/python bench/_node_cpu.py --ab --rounds 2            # client pipeline vs unary, interleaved

Starts the same 3-node cluster as ``node_bench.py`` (default config, fsync
on), drives it with the same load generator, and prints for each workload the
CPU milliseconds per operation of the leader and of each follower (from
/proc), which on a shared machine is a steadier measure than ops/s. With
``--ab`` each workload runs alternately with the client's pipeline and with
one unary call per operation (``ClientOptions(pipeline=False)``) on the same
cluster, ``--rounds`` times; ``--unary`` runs the unary client only. With
``--py-spy DIR`` every node is recorded (``--gil``, raw collapsed stacks,
100 samples/s) for ``bench/_node_profile.py`` or any stack reader.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import node_bench as nb

NAMES = {"put1": nb.Workload("put", 1), "put16": nb.Workload("put", 16), "put64": nb.Workload("put", 64),
         "get64": nb.Workload("get", 64)}  # fmt: skip


async def _drive(system: nb.KvstoreSystem, args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    value = rng.randbytes(nb.VALUE_BYTES)
    keys = nb.KeySource(rng)
    modes = [True, False] if args.ab else [not args.unary]
    drivers = {}
    for pipeline in modes:
        system.pipeline = pipeline
        drivers[pipeline] = system.driver()
    pids = system.server_pids()
    leader = system.leader_pid()
    order = sorted(pids, key=lambda p: p != leader)
    opts = argparse.Namespace(warmup=args.warmup, duration=args.seconds, max_ops=10**7)
    try:
        for name in args.workloads.split(","):
            for _ in range(args.rounds):
                for pipeline, driver in drivers.items():
                    label = f"{name}/{'pipe' if pipeline else 'unary'}"
                    await _measure(driver, NAMES[name], label, keys, value, order, pids, opts, args)
    finally:
        for driver in drivers.values():
            await driver.close()


async def _measure(
    driver: nb.Driver,
    workload: nb.Workload,
    label: str,
    keys: nb.KeySource,
    value: bytes,
    order: list[int],
    pids: list[int],
    opts: argparse.Namespace,
    args: argparse.Namespace,
) -> None:
    """Run one workload and print its throughput, p50 and CPU per operation of each node."""
    if workload.op == "get" and not keys.written:
        await driver.put(keys.put_key(0, 0), value)
        keys.remember(keys.put_key(0, 0))
    spies = _spy(order, label.replace("/", "-"), args)
    before = [nb.cpu_seconds([p]) for p in order]
    ops, errs, _, lat, secs, ccpu, _ = await nb.run_phase(driver, workload, keys, value, args=opts, pids=pids)
    after = [nb.cpu_seconds([p]) for p in order]
    for s in spies:
        s.wait()
    per = [(a - b) * 1000 / max(ops, 1) for a, b in zip(after, before, strict=True)]
    lat.sort()
    p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
    print(
        f"{label:12} {ops / secs:7.0f} ops/s  p50 {p50:6.2f} ms  errors {errs}  CPU ms/op: "
        f"servers {sum(per):.3f} = leader {per[0]:.3f} + followers "
        + " + ".join(f"{x:.3f}" for x in per[1:])
        + f"  (load gen {ccpu * 1000 / max(ops, 1):.3f})",
        flush=True,
    )


def _spy(pids: list[int], name: str, args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    if not args.py_spy:
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(args.py_spy)
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, pid in enumerate(pids):
        role = "leader" if i == 0 else f"follower{i}"
        cmd = [spy, "record", "--pid", str(pid), "--duration", str(int(args.warmup + args.seconds)),
               "--rate", str(args.rate), "--format", "raw", "--nonblocking", "--gil",
               "--output", str(out / f"{name}-{role}.txt")]  # fmt: skip
        if args.native:
            cmd[cmd.index("--nonblocking")] = "--native"  # native unwinding needs the process stopped per sample
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--workloads", default="put1,put64,get64", help="comma-separated: " + ",".join(NAMES))
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--py-spy", metavar="DIR", default=None)
    p.add_argument("--ab", action="store_true", help="alternate the client's pipeline and unary calls")
    p.add_argument("--unary", action="store_true", help="unary calls only (ClientOptions(pipeline=False))")
    p.add_argument("--rounds", type=int, default=1, help="repetitions of each workload (and mode)")
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--native", action="store_true", help="py-spy --native: C frames too (gRPC, uvloop)")
    args = p.parse_args()
    system = nb.KvstoreSystem(nb.Processes(), Path(tempfile.gettempdir()))
    try:
        system.start()
        asyncio.run(_drive(system, args))
    finally:
        system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
