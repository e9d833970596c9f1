"""Benchmark the hash rings: lookups per second, build time and load spread.

Usage:
    .venv/bin/python bench/ring_bench.py            # print the tables
    .venv/bin/python bench/ring_bench.py --write    # also replace the "ring" section of docs/PERFORMANCE.md

For the consistent ring, at each shard count and virtual-node count: build time,
lookups/s (``shard_for`` through the public API, key validation included, best of
``--repeat`` passes over ``--lookup-keys`` keys), and the load spread as max/mean and
min/mean, both sampled (keys per shard over ``--spread-keys`` keys) and exact (arc
lengths, ``ConsistentHashRing.ownership()``). For the rendezvous ring the same,
without virtual nodes and exact spread. Finally, the exact spread of the consistent
ring over ``--name-sets`` random sets of 2..16 shard names per virtual-node count,
the measurement behind the default of 512 (docs/ring.md).

Speed numbers on a shared machine are noisy: read ratios, not single values.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kvstore.client._hash import hash64
from kvstore.client.ring import DEFAULT_VNODES_PER_SHARD, ConsistentHashRing, RendezvousRing, Ring

REPO = Path(__file__).resolve().parents[1]
PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"
SECTION = re.compile(r"(<!-- BEGIN ring -->\n)(.*?)(<!-- END ring -->)", re.DOTALL)


def make_keys(seed: int, count: int) -> list[bytes]:
    """Half sequential ``user:<n>`` keys, half random bytes (4..24 bytes), shuffled."""
    rng = random.Random(seed)
    keys = [b"user:%d" % i for i in range(count // 2)]
    keys += [rng.randbytes(rng.randint(4, 24)) for _ in range(count - len(keys))]
    rng.shuffle(keys)
    return keys


def best_rate(action: Callable[[bytes], object], keys: Sequence[bytes], repeat: int) -> float:
    """Calls per second of ``action`` over ``keys``, best of ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for key in keys:
            action(key)
        best = min(best, time.perf_counter() - start)
    return len(keys) / best


def sampled_spread(ring: Ring, keys: Sequence[bytes]) -> tuple[float, float]:
    counts = Counter(ring.shard_for(key) for key in keys)
    mean = len(keys) / len(ring.shards)
    loads = [counts.get(name, 0) for name in ring.shards]
    return max(loads) / mean, min(loads) / mean


def shard_names(count: int) -> list[str]:
    return [f"shard-{i}" for i in range(count)]


def consistent_table(args: argparse.Namespace, lookup_keys: list[bytes], spread_keys: list[bytes]) -> list[str]:
    rows = [
        "| shards | vnodes | build ms | lookups/s | max/mean (sampled) | min/mean (sampled) | max/mean (exact) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for shards in args.shards:
        for vnodes in args.vnodes:
            start = time.perf_counter()
            ring = ConsistentHashRing(shard_names(shards), vnodes_per_shard=vnodes)
            build_ms = (time.perf_counter() - start) * 1000
            rate = best_rate(ring.shard_for, lookup_keys, args.repeat)
            high, low = sampled_spread(ring, spread_keys)
            exact = max(ring.ownership().values()) * shards
            mark = " (default)" if vnodes == DEFAULT_VNODES_PER_SHARD else ""
            rows.append(
                f"| {shards} | {vnodes}{mark} | {build_ms:.1f} | {rate:,.0f} | {high:.3f} | {low:.3f} | {exact:.3f} |"
            )
            print(rows[-1], flush=True)
    return rows


def rendezvous_table(args: argparse.Namespace, lookup_keys: list[bytes], spread_keys: list[bytes]) -> list[str]:
    rows = [
        "| shards | lookups/s | max/mean (sampled) | min/mean (sampled) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for shards in args.shards:
        ring = RendezvousRing(shard_names(shards))
        rate = best_rate(ring.shard_for, lookup_keys, args.repeat)
        high, low = sampled_spread(ring, spread_keys)
        rows.append(f"| {shards} | {rate:,.0f} | {high:.3f} | {low:.3f} |")
        print(rows[-1], flush=True)
    return rows


def name_set_table(args: argparse.Namespace) -> list[str]:
    """Exact spread of the consistent ring over random name sets of 2..16 shards, per vnode count."""
    rng = random.Random(args.seed)
    rows = [
        "| vnodes | sets | max/mean p50 | max/mean p99 | max/mean worst | min/mean worst |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for vnodes in args.vnodes:
        highs: list[float] = []
        lows: list[float] = []
        for shards in range(2, 17):
            for _ in range(args.name_sets):
                names = {f"{rng.getrandbits(48):012x}" for _ in range(shards)}
                shares = ConsistentHashRing(names, vnodes_per_shard=vnodes).ownership().values()
                highs.append(max(shares) * len(names))
                lows.append(min(shares) * len(names))
        highs.sort()
        p50, p99 = highs[len(highs) // 2], highs[int(0.99 * (len(highs) - 1))]
        rows.append(f"| {vnodes} | {len(highs)} | {p50:.3f} | {p99:.3f} | {highs[-1]:.3f} | {min(lows):.3f} |")
        print(rows[-1], flush=True)
    return rows


def write_section(text: str) -> None:
    """Replace only the text between this benchmark's markers in docs/PERFORMANCE.md."""
    current = PERFORMANCE.read_text(encoding="utf-8")
    if not SECTION.search(current):
        sys.exit(f"{PERFORMANCE}: no <!-- BEGIN ring --> ... <!-- END ring --> section to replace")
    PERFORMANCE.write_text(SECTION.sub(lambda m: m.group(1) + text + m.group(3), current, count=1), encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ints = lambda text: [int(part) for part in text.split(",")]  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=ints, default=[2, 4, 8, 16, 64], help="shard counts (comma-separated)")
    parser.add_argument("--vnodes", type=ints, default=[16, 64, 128, 256, 512, 1024], help="virtual-node counts")
    parser.add_argument("--lookup-keys", type=int, default=20_000, help="keys per timed pass")
    parser.add_argument("--spread-keys", type=int, default=100_000, help="keys for the sampled load spread")
    parser.add_argument("--name-sets", type=int, default=20, help="random name sets per shard count (0: skip)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes; the best counts")
    parser.add_argument("--seed", type=int, default=1, help="seed for keys and random names")
    parser.add_argument("--write", action="store_true", help="write the results into docs/PERFORMANCE.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    command = ".venv/bin/python bench/ring_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"seed {args.seed}")
    lookup_keys = make_keys(args.seed, args.lookup_keys)
    spread_keys = make_keys(args.seed + 1, args.spread_keys)
    hash_rate = best_rate(hash64, lookup_keys, args.repeat)
    print(f"hash64 alone: {hash_rate:,.0f}/s")
    consistent = consistent_table(args, lookup_keys, spread_keys)
    rendezvous = rendezvous_table(args, lookup_keys, spread_keys)
    sweep = name_set_table(args) if args.name_sets > 0 else []
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `{command.strip()}` (seed {args.seed}), "
        f"Python {platform.python_version()} on {platform.machine()}, a shared 2-core machine.",
        "Lookups/s are single-threaded `shard_for` calls through the public API (key validation included),",
        f"best of {args.repeat} passes over {args.lookup_keys:,} keys; `hash64` alone runs {hash_rate:,.0f}/s.",
        f"Spread is keys per shard over {args.spread_keys:,} keys (half `user:<n>`, half random bytes)",
        "relative to the mean; *exact* is the busiest shard's arc share times the shard count.",
        "Shard names are `shard-0 .. shard-(N-1)`.",
        "",
        "Consistent ring (`ConsistentHashRing`):",
        "",
        *consistent,
        "",
        "Rendezvous ring (`RendezvousRing`):",
        "",
        *rendezvous,
    ]
    if sweep:
        lines += [
            "",
            f"Consistent ring, exact spread over {args.name_sets} random name sets per size 2..16 "
            "(the measurement behind the default of 512 virtual nodes; docs/ring.md):",
            "",
            *sweep,
        ]
    text = "\n".join(lines) + "\n"
    if args.write:
        write_section(text)
        print(f"wrote the ring section of {PERFORMANCE}")


if __name__ == "__main__":
    main()
