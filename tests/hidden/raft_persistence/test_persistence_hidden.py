"""Hidden tests of the raft-persistence lab: what survives a restart, snapshots, and ReadIndex.

Mistakes they look for: a hard state whose vote is lost at restart, a torn tail of the durable log taken
for damage (or damage taken for a torn tail), log compaction that drops one entry too many, a snapshot
install that leaves replicas inconsistent, and a read served without a quorum round (a deposed leader's
stale read). Seeded simulator runs print their seed.
"""

from __future__ import annotations

import pytest

from kvstore.errors import CorruptionError
from kvstore.fs import SimFileSystem
from kvstore.raft import Entry, HardState
from kvstore.server.raft_log import HEADER_BYTES, DurableRaftLog, encode_record, scan_records
from kvstore.sim import SimConfig, run_simulation, scenarios

D = "/raft"


def reopen(fs: SimFileSystem) -> DurableRaftLog:
    fs.reboot()
    return DurableRaftLog.open(D, fs=fs)


def test_a_vote_cast_after_the_term_was_stored_survives_a_restart() -> None:
    """Term 3 is stored first, the vote of term 3 later (the usual order): after power loss both come back."""
    fs = SimFileSystem(seed=1)
    log = DurableRaftLog.open(D, fs=fs)
    log.append((Entry(1, 1), Entry(2, 2)))
    log.set_hard_state(HardState(term=3, voted_for=None, commit_index=1))
    log.sync()
    log.set_hard_state(HardState(term=3, voted_for="n2", commit_index=1))
    log.sync()
    log.set_hard_state(HardState(term=3, voted_for="n2", commit_index=2))
    log.sync()
    state = reopen(fs).load()
    assert state.hard_state == HardState(3, "n2", 2)
    assert [(e.index, e.term) for e in state.entries] == [(1, 1), (2, 2)]


def test_a_torn_record_at_the_end_is_dropped_but_damage_before_it_is_corruption() -> None:
    """scan_records: a record cut anywhere at the end ends the scan at the last whole record; one flipped
    bit in the body of a whole record, with more records after it, is CorruptionError at its offset."""
    records = [encode_record(2, b"body %d" % i * (i + 1)) for i in range(4)]
    whole = b"".join(records[:3])
    for cut in range(1, len(records[3])):
        found = scan_records(whole + records[3][:cut], "seg")
        assert found.valid_bytes == len(whole) and len(found.records) == 3
    data = bytearray(b"".join(records))
    at = len(records[0])
    data[at + HEADER_BYTES + 2] ^= 0x04
    with pytest.raises(CorruptionError) as exc:
        scan_records(bytes(data), "seg")
    assert exc.value.offset == at


def test_a_deposed_leader_never_confirms_a_read() -> None:
    """A leader cut off from the majority (check-quorum off) is asked for a read after the others moved on:
    the read must fail, never return the overwritten value, and the history stays linearizable."""
    sim, read = scenarios.deposed_leader_read()
    assert sim.checker.leaders.get(1) == "n1" and len(sim.checker.leaders) >= 2, "leadership did move"
    assert read.outcome != "ok", f"the deposed leader answered {read.result!r}"
    assert sim.check_history().valid


@pytest.mark.parametrize("seed", [401, 402, 403, 404, 405, 406])
def test_snapshots_and_crashes_under_load_keep_every_replica_consistent(seed: int) -> None:
    """Frequent snapshots, crashes (some before fsync) and drops, with clients: every check holds, lagging
    nodes are brought back by snapshot installs, and the cluster is live at the end."""
    print(f"seed {seed}")
    cfg = SimConfig(nodes=5, seed=seed, faults=frozenset({"crash", "disk", "drop", "partition"}), clients=2,
                    snapshot_every_entries=8, nemesis_interval_ticks=30)
    result = run_simulation(cfg, ticks=1000)
    assert result.ok, result.summary()
    assert result.stats.snapshots_taken > 0 and result.stats.crashes > 0, result.summary()
