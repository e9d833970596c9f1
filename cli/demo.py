"""`make demo`: a sharded, replicated cluster doing real work, then a failure it survives.

Narrates each step in plain words and shows the ``kv`` commands it runs, so a
newcomer can repeat any step by hand. Bounded in time (about a minute); every
node process is stopped at the end, even on Ctrl-C or an error.

Steps: start 2 shards x 3 replicas on loopback; write a few hundred keys and
show how they spread over the shards; read them back; SIGKILL one shard's
leader and show the shard elect a new one and keep serving; restart the node
and show it catch up; check every key once more; shut everything down.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

from kvstore.client.client import Client, ClientOptions
from kvstore.server.local_cluster import LocalCluster, create_cluster
from kvstore.types import NodeStatus

KV = [sys.executable, "-m", "kvstore_cli"]
KEYS = 300
SHARDS, REPLICAS = 2, 3


def say(text: str) -> None:
    """Narrate one step."""
    print("\n" + textwrap.fill(text, width=92), flush=True)


def kv(cluster_file: Path, *args: str) -> int:
    """Run one kv command as a user would, echoing it and its output."""
    print(f"  $ kv {' '.join(a if a and ' ' not in a else repr(a) for a in args)}", flush=True)
    done = subprocess.run([*KV, "--cluster", str(cluster_file), *args], capture_output=True, text=True, timeout=60)
    for line in (done.stdout + done.stderr).strip().splitlines():
        print(f"    {line}")
    return done.returncode


def leaders(local: LocalCluster) -> dict[str, NodeStatus]:
    """shard -> the node leading it in the highest term."""
    best: dict[str, NodeStatus] = {}
    for row in local.status():
        if row.role == "leader" and (row.shard not in best or row.term > best[row.shard].term):
            best[row.shard] = row
    return best


def wait_for(what: str, check: object, timeout_s: float = 30.0) -> float:
    """Poll ``check()`` until true; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def run(workdir: Path) -> None:
    """The demo proper; raises on any step that does not behave."""
    say(f"1. Starting {SHARDS} shards x {REPLICAS} replicas (6 node processes) on 127.0.0.1, in {workdir}.")
    cluster_file = create_cluster(workdir, shards=SHARDS, replicas=REPLICAS)
    local = LocalCluster(cluster_file, progress=lambda m: print(f"  {m}", flush=True))
    local.up(timeout_s=60)
    kv(cluster_file, "cluster", "status")

    opts = ClientOptions(request_timeout_s=2.0, deadline_s=20.0)
    with Client(str(cluster_file), options=opts) as client:
        say(f"2. Writing {KEYS} keys through the client library. Each key goes to the shard the hash ring names.")
        started = time.monotonic()
        data = {f"user:{i:04d}".encode(): f"value {i}".encode() for i in range(KEYS)}
        for k, v in data.items():
            client.put(k, v)
        spread = Counter(client.shard_for(k).name for k in data)
        print(f"  wrote {KEYS} keys in {time.monotonic() - started:.1f}s; per shard: {dict(sorted(spread.items()))}")
        kv(cluster_file, "put", "greeting", "hello from the demo")
        kv(cluster_file, "get", "greeting")
        kv(cluster_file, "scan", "--start", "user:0100", "--limit", "3")

        say("3. Reading every key back (linearizable reads, confirmed by each shard's leader).")
        wrong = [k for k, v in data.items() if client.get(k) != v]
        print(f"  {KEYS - len(wrong)}/{KEYS} keys read back correctly")
        if wrong:
            raise RuntimeError(f"{len(wrong)} keys read back wrong")

        victim = leaders(local)["s0"]
        say(f"4. A failure: SIGKILL node {victim.node_id}, the leader of shard s0 (term {victim.term}).")
        local.kill(victim.node_id)
        s0_keys = [k for k in data if client.shard_for(k).name == "s0"]
        started = time.monotonic()
        client.put(s0_keys[0], b"written after the crash")
        took = time.monotonic() - started
        data[s0_keys[0]] = b"written after the crash"
        new = leaders(local)["s0"]
        print(f"  shard s0 elected {new.node_id} (term {new.term}); the first write after the crash took {took:.1f}s")
        kv(cluster_file, "cluster", "status")
        for k in s0_keys[1:51]:
            data[k] = b"updated while " + victim.node_id.encode() + b" was down"
            client.put(k, data[k])
        print("  50 more writes to shard s0 succeeded with one replica down")

        say(f"5. Restarting {victim.node_id}; it rejoins as a follower and catches up from the new leader.")
        local.restart(victim.node_id)

        def caught_up() -> bool:
            rows = {r.node_id: r for r in local.status()}
            return rows[victim.node_id].applied_index >= rows[new.node_id].applied_index > 0

        took = wait_for(f"{victim.node_id} to catch up", caught_up)
        print(f"  {victim.node_id} caught up in {took:.1f}s")
        kv(cluster_file, "cluster", "status")

        say("6. Checking every key once more, including the writes made while the node was down.")
        wrong = [k for k, v in data.items() if client.get(k) != v]
        print(f"  {len(data) - len(wrong)}/{len(data)} keys correct")
        if wrong:
            raise RuntimeError(f"{len(wrong)} keys wrong after recovery")

    say("7. Shutting the cluster down gracefully.")
    print(f"  stopped {local.down()} node(s)")


def main() -> int:
    """Run the demo; return the exit code (0 when every step behaved)."""
    workdir = Path(tempfile.mkdtemp(prefix="kvstore-demo-")) / "cluster"
    started = time.monotonic()
    try:
        run(workdir)
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 1
    except Exception as exc:
        print(f"\ndemo failed: {type(exc).__name__}: {exc}")
        print(f"the nodes' logs and data are kept in {workdir}")
        return 1
    finally:
        if (workdir / "cluster.toml").exists():
            with contextlib.suppress(Exception):  # stop whatever is still running; never mask the outcome
                LocalCluster(workdir / "cluster.toml").down()
    shutil.rmtree(workdir.parent, ignore_errors=True)
    say(f"Done in {time.monotonic() - started:.0f}s: the cluster served every read and write, survived the loss "
        "of a leader, and brought the crashed node back up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
