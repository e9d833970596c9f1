"""Storage-engine benchmark: kvstore.lsm next to sqlite3, LevelDB, RocksDB and two pure-Python LSM stores.

Usage (``make bench-engine ARGS="..."``)::

    python bench/engine_bench.py [--keys 100000,1000000] [--stores kvstore,sqlite3,...]
                                 [--setup-peers] [--timeout SECONDS] [--peer-timeout SECONDS] [--profile] [--no-doc]

For each size and store, a separate worker process (``bench/_engine_worker.py``) runs: random
fill in batches of 1,000 (sync off), random point reads that hit, reads that miss, a full
ordered scan, a full compaction and the reads again, then a fresh fill one put at a time. The
numbers, ratios, amplification figures, a bar chart, the exact command and (with
``--profile``) where our engine spends its time are written between the ``engine`` markers of
``docs/PERFORMANCE.md``.

``--setup-peers`` pip-installs each package of ``bench/requirements-peers.txt`` into this
interpreter's environment, one by one; a peer that fails to install or import is reported as
missing, never silently dropped. A store that exceeds ``--timeout`` is reported with the
phases it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- BEGIN engine -->", "<!-- END engine -->"
sys.path.insert(0, str(HERE))
from _engine_stores import PEER_PACKAGES, STORES  # noqa: E402

PHASES = ["fill_batch", "fill_single", "read_hit", "read_miss", "scan", "read_after_compact"]
LABELS = {
    "fill_batch": "random fill, batches of 1,000",
    "fill_single": "random fill, one at a time",
    "read_hit": "random reads (hits)",
    "read_miss": "random reads (misses)",
    "scan": "full ordered scan",
    "read_after_compact": "random reads after compaction",
}


def setup_peers() -> dict[str, str]:
    """pip-install each peer package separately; return package -> "ok" or the error."""
    status: dict[str, str] = {}
    for line in (HERE / "requirements-peers.txt").read_text().splitlines():
        pkg = line.split("#", 1)[0].strip()
        if not pkg:
            continue
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pkg], capture_output=True, text=True)
        status[pkg] = "ok" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["install failed"])[-1]
        print(f"setup {pkg}: {status[pkg]}", flush=True)
    return status


def importable(store: str) -> str | None:
    """None if the store's module imports, else the reason it does not."""
    pkg = PEER_PACKAGES.get(store)
    if pkg is None:
        return None
    r = subprocess.run([sys.executable, "-c", f"import {pkg}"], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["import failed"])[-1]


def run_store(store: str, keys: int, workdir: str, timeout: float, profile: str | None = None) -> dict[str, Any]:
    """Run one worker; return {"phases": {...}, "status": "ok" | "timeout after ..." | "error: ..."}."""
    cmd = [sys.executable, str(HERE / "_engine_worker.py"), store, str(keys), workdir]
    if profile:
        cmd += ["--profile", profile]
    phases: dict[str, dict[str, Any]] = {}
    status = "ok"
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        try:
            os.set_blocking(proc.stdout.fileno(), True)
            import selectors

            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    status = f"did not finish in {timeout:.0f} s"
                    break
                if not sel.select(timeout=min(left, 5.0)):
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                rec = json.loads(line)
                phases[rec["phase"]] = rec
                print(f"  {store:10s} {keys:>10,} {rec['phase']:20s} {rate(rec)}", flush=True)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if status == "ok" and proc.returncode != 0:
            err.seek(0)
            tail = err.read().strip().splitlines()
            status = "error: " + (tail[-1] if tail else f"exit {proc.returncode}")
    return {"phases": phases, "status": status}


def ops_per_s(rec: dict[str, Any] | None) -> float | None:
    if not rec or not rec.get("ops") or rec["seconds"] <= 0:
        return None
    return float(rec["ops"]) / float(rec["seconds"])


def ops_per_cpu_s(rec: dict[str, Any] | None) -> float | None:
    if not rec or not rec.get("ops") or not rec.get("cpu_seconds"):
        return None
    return float(rec["ops"]) / float(rec["cpu_seconds"])


def rate(rec: dict[str, Any]) -> str:
    r = ops_per_s(rec)
    return f"{r:,.0f} ops/s" if r is not None else f"{rec['seconds']:.2f} s"


def fmt(r: float | None) -> str:
    return "—" if r is None else f"{r:,.0f}"


def comparison_table(keys: int, results: dict[str, dict[str, Any]]) -> list[str]:
    stores = list(results)
    out = [f"#### {keys:,} keys (16-byte random keys, 100-byte values), ops/s", ""]
    out.append("| workload | " + " | ".join(stores) + " |")
    out.append("|---|" + "---:|" * len(stores))
    for ph in PHASES:
        cells = [fmt(ops_per_s(results[s]["phases"].get(ph))) for s in stores]
        out.append(f"| {LABELS[ph]} | " + " | ".join(cells) + " |")
    out.append("| status | " + " | ".join(results[s]["status"] for s in stores) + " |")
    out.append("")
    out.append("The same runs in operations per CPU-second of the benchmark process (all its threads; less "
               "sensitive to the machine's load than wall time, blind to I/O waits):")
    out.append("")
    out.append("| workload | " + " | ".join(stores) + " |")
    out.append("|---|" + "---:|" * len(stores))
    for ph in PHASES:
        cells = [fmt(ops_per_cpu_s(results[s]["phases"].get(ph))) for s in stores]
        out.append(f"| {LABELS[ph]} | " + " | ".join(cells) + " |")
    out.append("")
    ours = results.get("kvstore")
    if ours:
        out.append("Ratio kvstore.lsm / peer (above 1: we are faster):")
        out.append("")
        peers = [s for s in stores if s != "kvstore"]
        out.append("| workload | " + " | ".join(peers) + " |")
        out.append("|---|" + "---:|" * len(peers))
        for ph in PHASES:
            mine = ops_per_s(ours["phases"].get(ph))
            cells = []
            for p in peers:
                theirs = ops_per_s(results[p]["phases"].get(ph))
                cells.append("—" if mine is None or theirs is None else f"{mine / theirs:.2f}×")
            out.append(f"| {LABELS[ph]} | " + " | ".join(cells) + " |")
        out.append("")
    sizes = []
    for s in stores:
        size = results[s]["phases"].get("size")
        if size and size.get("bytes"):
            sizes.append(f"{s} {size['bytes'] / size['user_bytes']:.2f}")
    if sizes:
        out.append("Space amplification after compaction (bytes on disk / bytes of keys and values): "
                   + ", ".join(sizes) + ".")
        out.append("")
    return out


def engine_rows(all_results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    out = ["#### kvstore.lsm alone, by size", ""]
    out.append("| keys | batch fill | single fill | hits | misses | scan | hits after compaction | write amp. "
               "(with WAL / tables only) | space amp. before / after compaction | bloom FP rate | read amp. | stalls |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for keys, results in sorted(all_results.items()):
        ours = results.get("kvstore")
        if not ours:
            continue
        ph = ours["phases"]
        before, after = ph.get("size_before_compact", {}), ph.get("size", {})
        cells = [fmt(ops_per_s(ph.get(p))) for p in
                 ("fill_batch", "fill_single", "read_hit", "read_miss", "scan", "read_after_compact")]
        wa = f"{before.get('write_amplification', 0):.2f} / {before.get('write_amplification_without_wal', 0):.2f}"
        sa = (f"{before.get('bytes', 0) / max(1, before.get('user_bytes', 1)):.2f} / "
              f"{after.get('bytes', 0) / max(1, after.get('user_bytes', 1)):.2f}")
        fp = f"{after.get('bloom_false_positive_rate', 0) * 100:.2f} %"
        ra = f"{after.get('read_amplification', 0):.2f}"
        st = f"{before.get('stalls', 0)} ({before.get('stall_seconds', 0):.1f} s)"
        out.append(f"| {keys:,} | " + " | ".join(cells) + f" | {wa} | {sa} | {fp} | {ra} | {st} |")
    out.append("")
    return out


def bar_chart(keys: int, results: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"Batched fill and point reads at {keys:,} keys (each bar scaled to the fastest store):", "", "```"]
    for ph in ("fill_batch", "read_hit"):
        rates = {s: ops_per_s(r["phases"].get(ph)) for s, r in results.items()}
        top = max((v for v in rates.values() if v), default=0.0)
        out.append(LABELS[ph])
        for s, v in rates.items():
            bar = "#" * round(40 * v / top) if v and top else ""
            out.append(f"  {s:10s} {bar:40s} {fmt(v)}")
    out += ["```", ""]
    return out


def target_checks(keys: int, results: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's targets at this size, each marked met or not met with the numbers."""
    ours = results.get("kvstore")
    if not ours:
        return []

    def r(store: str, phase: str) -> float | None:
        return ops_per_s(results.get(store, {}).get("phases", {}).get(phase))

    def c(store: str, phase: str) -> float | None:
        return ops_per_cpu_s(results.get(store, {}).get("phases", {}).get(phase))

    out = [f"Targets at {keys:,} keys (wall-clock rates of this run):", ""]
    fill = r("kvstore", "fill_batch")
    pure = [v for v in (r("soonerdb", "fill_batch"), r("yellowdb", "fill_batch")) if v]
    checks = [
        ("batched fill ≥ 1.5× the faster pure-Python peer", fill, max(pure) if pure else None, 1.5),
        ("batched fill ≥ 0.3× LevelDB", fill, r("leveldb", "fill_batch"), 0.3),
        ("point reads (hits) ≥ 0.8× sqlite3", r("kvstore", "read_hit"), r("sqlite3", "read_hit"), 0.8),
        ("point reads after compaction ≥ 0.8× sqlite3", r("kvstore", "read_after_compact"),
         r("sqlite3", "read_after_compact"), 0.8),
        ("full scan ≥ 0.5× sqlite3", r("kvstore", "scan"), r("sqlite3", "scan"), 0.5),
    ]
    pure_cpu = [v for v in (c("soonerdb", "fill_batch"), c("yellowdb", "fill_batch")) if v]
    cpu_rates = {
        checks[0][0]: (c("kvstore", "fill_batch"), max(pure_cpu) if pure_cpu else None),
        checks[1][0]: (c("kvstore", "fill_batch"), c("leveldb", "fill_batch")),
        checks[2][0]: (c("kvstore", "read_hit"), c("sqlite3", "read_hit")),
        checks[3][0]: (c("kvstore", "read_after_compact"), c("sqlite3", "read_after_compact")),
        checks[4][0]: (c("kvstore", "scan"), c("sqlite3", "scan")),
    }
    for label, mine, theirs, factor in checks:
        if mine is None or theirs is None:
            verdict = "not measured (a peer is missing or did not finish)"
        else:
            ratio = mine / theirs
            verdict = f"{'met' if ratio >= factor else 'NOT met'} ({fmt(mine)} vs {fmt(theirs)} ops/s = {ratio:.2f}×"
            cpu_mine, cpu_theirs = cpu_rates.get(label, (None, None))
            if cpu_mine and cpu_theirs:
                verdict += f"; per CPU-second {cpu_mine / cpu_theirs:.2f}×"
            verdict += ")"
        out.append(f"- {label}: {verdict}")
    out.append("")
    return out


def profile_section(path: str, what: str, per_op: int = 0) -> list[str]:
    """cProfile's own time per function (top 15) of one profile file, as a table."""
    stats = pstats.Stats(path)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    extra = f", {1e6 * total / per_op:.1f} µs per operation under the profiler" if per_op else ""
    out = [f"Where the time goes: {what} (cProfile of kvstore.lsm, own time per function, top 15{extra}):", "",
           "| function | calls | own time | share |", "|---|---:|---:|---:|"]
    for (file, line, fn), v in rows:
        out.append(f"| `{Path(file).name}:{line}({fn})` | {v[1]:,} | {v[2]:.2f} s | {100 * v[2] / total:.1f} % |")
    out.append("")
    return out


READING_GUIDE = """How to read these numbers (structural facts of kvstore.lsm, true for every run):

- **Fill.** The engine is pure Python and its flush and compaction threads share the interpreter
  lock with the writer, so the sustained fill rate is bounded by the total CPU spent per key: the
  foreground part (WriteBatch, one WAL record per batch, one `dict.update` into the memtable —
  about 1 µs per key) plus *write amplification* × the per-entry cost of rewriting a table (decode
  the input blocks, windowed merge, encode the output blocks, build the bloom filter). With
  LevelDB's shape (4 MiB memtable, 10 MiB L1, ratio 10) write amplification grows with the data
  (each tenfold growth adds a level that every byte is rewritten into), which is why the fill rate
  falls with size; `stalls` counts writers that waited at the L0 threshold (12 tables) or for a
  flush. The `settle` time after the fill is the compaction debt left when the last write returned.
- **Where the time of one `get()` goes** (a hit at 1,000,000 keys, measured piece by piece with
  the garbage collector off, on the shared machine: 8–10 µs of CPU in all, most of it memory
  traffic rather than interpreted steps — inlining the cache calls, for one, measured nothing).
  Memtables: two dict lookups, well under 1 µs. Then per level, newest first: L0 tables one by
  one, deeper levels one table each found by bisecting the level's largest keys (0.2 µs). A table
  whose `[smallest, largest]` does not hold the key is skipped before its filter: after a fill
  L1 and the last level each cover only part of the key space (compaction moves their tables
  down one at a time), so a hit probes 1.15–1.45 filters instead of 2.0, plus one per L0 table
  left below the compaction trigger (0–3 after a fill). The *blocked* bloom probe is inlined in
  `get`: each table's filter is held as one 1024-bit integer per 512-bit block (the block twice,
  `bloom.prepare_probe`), so a probe is a list index, a shift by `h mod 512` and one `&` with one
  of 128 base masks that stay in the CPU cache (~0.4 µs; `bloom.probe_prepared` is the same
  expression and is tested against `may_contain`). For the table that holds the key: one bisect
  of the index (0.7 µs, mostly cache misses on the index keys), the block cache (a lock-free dict
  lookup, 0.2 µs, and a doorkeeper that admits a block only on its second miss), the block read
  (an mmap slice of ~4.5 KiB: 1.5 µs, memory traffic; `pread` measured 2.6–3 µs) and then, for a
  block the cache does not keep (~95 % of them), a search of its sealed bytes with no `Block`
  object: CRC-32 of the whole block against the CRC residue (1.2–1.5 µs), four `struct` reads
  (entry count, end of the key area, the entry's key bounds, its value bounds: 0.5 µs), one
  `bytes.find` of the key (0.35 µs) and the value slice. Keys of mixed lengths, a match that
  straddles two keys, and any damage go through `decode_block` and `Block.find`. A miss usually
  stops at the bloom probes, which is why misses are 3–4× faster than hits. At 1,000,000
  uniformly random keys the data is ~14× the default 8 MiB block cache, so the cache hits ~5 % of
  reads and neither helps nor hurts measurably; at 100,000 keys a cache that holds everything
  (64 MiB) makes hits ~1.5× faster (a cached, decoded block is searched with one C `bisect`).
- **Settling.** Every store's read phases start after the benchmark calls its `idle()`: ours
  waits (`wait_idle`) until no flush or compaction is pending, which leaves 0–3 L0 tables (below
  the trigger of 4, as LevelDB leaves them); the peers have no such call, and whatever background
  work they have left runs during their reads.
- **Scans** merge windows of all sources at a time with `dict.update` and `sorted` (in C); table
  sources are read in coalesced runs of up to 2,048 entries (fewer windows), and the merged pairs
  come out of a C chain of `zip`s, so the caller's loop is the only interpreted step per pair.
  The per-entry costs left are slicing each key and value out of its block (two list
  comprehensions, ~0.1 µs per entry each).
- **Profile.** The tables above are cProfile's *own time* per function: the batched fill (run
  with `background=False`, so flushes and compactions execute, and are profiled, in the writing
  thread) and, separately, 50,000 hits. cProfile charges a fixed cost to every Python call, so it
  overstates functions that are called often and are cheap; builtins such as `zlib.crc32`,
  `bytes.find` and `dict.update` appear under their own names.

Design choices measured (2026-11-27, ops per CPU-second at 1,000,000 keys, our engine and sqlite3
in one process with the benchmark's settings; before → after, two "after" runs): random point
reads (hits) 52k → 85–95k (sqlite3 89–113k: 0.46× → 0.84–0.95×); full scan 1.14M → 1.71–1.79M
(sqlite3 2.05–2.24M: 0.51× → 0.80–0.84×); reads after compaction 51k → 82–91k (sqlite3 99–115k:
0.78–0.82×); batched fill 82k → 107–109k (fill time plus the compaction debt). What made the
difference, in order: (1) a block just read is searched in place (a `memoryview` over its offset
arrays plus `bytes.find`) instead of unpacking every offset into tuples: hits +25 %; (2)
`Engine.get` probes filters and tables inline, the trailer check is inlined, the cache lookup
takes no lock: hits +15–40 % (noisy); (3) blocked bloom filters (format version 2, `FORMAT.md`):
a probe costs the same three C steps whatever `k`, and building a filter is one `|=` per key —
reads after compaction +70 %, fill +20 % (the classic filter's build loop was a quarter of the
fill profile); false-positive rate 1.0 % → 1.1 % at 10 bits per key; (4) scans: a C chain of
`zip`s and coalesced runs: +20 %; (5) block cache: a doorkeeper admits a block on its second
miss, a cached block decodes its keys on its second hit (on the first: −10 % for uniformly random
reads at 1M keys); (6) the read state lists only non-empty levels. Tried and not taken: 2 KiB and
1 KiB blocks (hits unchanged or +25 %, but fill −20 % / −45 % and scans −25 % / −40 %); 64-bit
filter blocks (2.4 % false positives). Kept on purpose: the CRC check of every block read from the
file (LevelDB skips it by default; we do not serve unverified bytes) and the 8 MiB default cache
(LevelDB's default). Those in-process ratios flattered us: in this benchmark every store runs in a worker process of
its own, where sqlite3's point reads are faster (124k/s in the 07:20 run against 89–113k beside
our engine), and in the 07:20 run, before the second round below, hits came out at 0.64× sqlite3, under the 0.8×
target (0.86× in the 10:01 run above, after it).

Read path, second round (2026-11-27, 1,000,000 keys: the tree built as the benchmark builds it —
batched fill, then `wait_idle` — and 200,000 random hits; CPU µs per hit, six runs interleaved
with the previous commit): 9.6 / 9.9 / 12.0 / 10.3 / 8.2 / 10.4 µs against 11.8 / 10.9 / 14.4 /
14.0 / 12.5 / 11.9 µs (−18 % by the median; the spread is the shared machine and the tree's
shape, which changes from run to run with the timing of background compactions); reads after
compaction 7.5–9.1 µs against 10.9–11.3 µs (−25 %); batched fill and scans unchanged within the
noise (fill 146–179k against 110–162k per CPU-second, scans 1.52–1.59M against 1.40–1.58M). In
separate worker processes (`engine_bench.py --keys 1000000 --stores kvstore,sqlite3`), per
CPU-second, three runs: hits 82.9k / 98.3k / 85.9k against sqlite3 96.4k / 99.3k / 92.0k
(0.86× / 0.99× / 0.93×; before: 0.64×); after compaction 1.24× / 1.03× / 1.28× (before: 0.86×).
Scans in the same runs: 0.97× / 0.60× / 0.53× (ours 1.26–1.52M per CPU-second, as before the
change; sqlite3's 1.57–2.36M moved more with the load), so on a busy machine the scan ratio comes
close to its 0.5× target. What paid: (1) skipping tables whose key
range misses the key — the shape at read time is 0–3 L0 tables, 4–5 in L1, ~50 in L2, 4–7 in L3,
and L1 and L3 cover only part of the key space, so probes per hit fell from 2.0 to 1.15–1.45
(misses gain most: 260k → 370–620k/s); (2) the inlined probe on doubled filter blocks, which
also keeps the 6 MB mask table out of the read path (−0.3 to −0.5 µs per hit, in-process A/B);
(3) searching a block read once in its sealed bytes instead of building a `Block` (−1 µs). Tried
and not taken: an `array` of 8-byte key prefixes for the index bisect (no measurable change);
inlining the cache lookup and the doorkeeper into the block read (none: what is left is memory
traffic, not calls); `binascii.crc32` (the same zlib code); `pread` instead of the mmap slice
(slower: 2.6–3 µs against 1.5–2 µs); 2 KiB blocks, measured again with the new read path (hits
−22 %, but batched fill −25 %, under the 0.3× LevelDB target); LevelDB's seek-triggered
compaction (a table probed in vain ~100 times is compacted: inside a 200,000-read phase it would
start an L0→L1 compaction of 10–20 MB, seconds of CPU, in the middle of the reads). What a hit
still costs is mostly memory traffic: the block copy and its CRC (~3 µs for 4.5 KiB), the index
bisect and the filter probes; a CRC-32 over the mapped bytes without the copy measured the same
(3.06 against 3.1 µs: the time is the DRAM reads, not the copy). The next step would be smaller
blocks once compaction's per-block cost is lower, or a larger cache, which this benchmark keeps at
LevelDB's 8 MiB default on purpose.
"""


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:a] + "\n" + text.strip() + "\n" + doc[b:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", default="1000000", help="comma-separated key counts (default 1000000)")
    ap.add_argument("--stores", default=",".join(STORES), help="comma-separated stores")
    ap.add_argument("--engine-only-keys", default="", help="extra key counts to run kvstore.lsm alone")
    ap.add_argument("--setup-peers", action="store_true", help="pip-install the peers first")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per store and size")
    ap.add_argument(
        "--peer-timeout",
        type=float,
        default=None,
        help="seconds per peer store and size (default: --timeout); the pure-Python peers collapse at 1M keys",
    )
    ap.add_argument("--profile", action="store_true", help="profile kvstore.lsm at the largest size")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/PERFORMANCE.md")
    ap.add_argument("--notes", default="", help="free text added to the report")
    ap.add_argument("--save", default="", help="also write the raw results as JSON to this file")
    args = ap.parse_args()
    sizes = [int(x) for x in args.keys.split(",") if x]
    extra = [int(x) for x in args.engine_only_keys.split(",") if x]
    stores = [s for s in args.stores.split(",") if s]
    setup = setup_peers() if args.setup_peers else {}
    missing = {s: why for s in stores if (why := importable(s)) is not None}
    load_before = os.getloadavg()
    started = time.time()
    all_results: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as work:
        for keys in sizes + [k for k in extra if k not in sizes]:
            for_size = stores if keys in sizes else ["kvstore"]
            all_results[keys] = {}
            for s in for_size:
                if s in missing:
                    all_results[keys][s] = {"phases": {}, "status": f"missing ({missing[s]})"}
                    continue
                limit = args.timeout if s == "kvstore" or args.peer_timeout is None else args.peer_timeout
                all_results[keys][s] = run_store(s, keys, work, limit)
        if args.save:
            Path(args.save).write_text(json.dumps({str(k): v for k, v in all_results.items()}, indent=1))
        prof_path = None
        if args.profile:
            prof_path = os.path.join(work, "kvstore.prof")
            run_store("kvstore", max(sizes), work, args.timeout, profile=prof_path)
        lines = [
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on the shared 2-core machine "
            f"(load average {load_before[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; the machine is "
            "shared, so absolute numbers are noisy and ratios between stores measured in the same run are the "
            "meaningful figures).",
            "",
            "Command:",
            "",
            "```",
            "make bench-engine ARGS=" + shlex.quote(" ".join(sys.argv[1:])),
            "```",
            "",
        ]
        if setup:
            lines += ["Peer setup: " + ", ".join(f"{k}: {v}" for k, v in setup.items()) + ".", ""]
        if missing:
            lines += ["Missing peers: " + ", ".join(f"{k} ({v})" for k, v in missing.items()) + ".", ""]
        lines.append("Store settings: " + "; ".join(f"{STORES[s].name}: {STORES[s].note}" for s in stores) + ".")
        lines.append("")
        for keys in sizes:
            lines += comparison_table(keys, all_results[keys])
            lines += bar_chart(keys, all_results[keys])
            lines += target_checks(keys, all_results[keys])
        lines += engine_rows(all_results)
        if prof_path and os.path.exists(prof_path):
            lines += profile_section(prof_path, f"the batched fill of {max(sizes):,} keys")
        if prof_path and os.path.exists(prof_path + ".reads"):
            reads = min(50_000, max(sizes))
            lines += profile_section(prof_path + ".reads", f"{reads:,} random point reads (hits) after the fill", reads)
        lines += [READING_GUIDE]
        if args.notes:
            lines += [args.notes, ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        write_doc(text)


if __name__ == "__main__":
    main()
