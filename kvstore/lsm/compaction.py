"""Leveled compaction: which tables to merge, and the merge itself.

Theory of operation. Level 0 holds whole flushed memtables (tables may overlap; newer file
numbers are newer data). Each level ``L >= 1`` is one sorted run split into disjoint tables,
with a size target of ``level1_target_bytes * level_size_ratio ** (L - 1)``. Every level has a
*score*: for L0, ``files / l0_compaction_trigger_files``; for ``L >= 1``, ``bytes / target``.
:func:`pick_compaction` chooses the level with the highest score ``>= 1`` (LevelDB's rule):

* from L0 it takes *every* L0 table (so no newer L0 table is left above an older one it
  shadows) plus the L1 tables overlapping their key range;
* from ``L >= 1`` it takes one table — round-robin through the key space by a per-level
  cursor, so every key range gets its turn — plus the overlapping tables of ``L + 1``.

:func:`write_merged` merges the inputs (newest first) with the windowed merge of
:mod:`kvstore.lsm.iterators`, keeps only the newest entry per key, and writes output tables of
about ``table_target_bytes``. A tombstone is dropped only when no level below the output
level holds a table whose key range covers the key (then nothing older can be uncovered).

Write amplification of this scheme is about ``1 + ratio/2`` per level an entry moves through
(plus the WAL and the flush); the benchmark reports the measured figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kvstore.fs import WritableFile
from kvstore.invariants import invariant
from kvstore.lsm.iterators import Run
from kvstore.lsm.manifest import NUM_LEVELS, FileMeta, Version
from kvstore.lsm.sstable import TableBuilder


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """The knobs of leveled compaction (copied from the engine options)."""

    l0_compaction_trigger_files: int = 4
    level1_target_bytes: int = 10 * 1024 * 1024
    level_size_ratio: int = 10
    table_target_bytes: int = 2 * 1024 * 1024
    block_size_bytes: int = 4096
    bloom_bits_per_key: int = 10


@dataclass(frozen=True, slots=True)
class Compaction:
    """Merge ``inputs`` (at ``level``) with ``next_inputs`` (at ``level + 1``) into ``level + 1``."""

    level: int
    inputs: tuple[FileMeta, ...]
    next_inputs: tuple[FileMeta, ...]

    @property
    def output_level(self) -> int:
        """Where the merged tables go."""
        return self.level + 1

    def all_inputs(self) -> list[tuple[int, FileMeta]]:
        """Every input file with its level."""
        return [(self.level, f) for f in self.inputs] + [(self.level + 1, f) for f in self.next_inputs]

    def key_range(self) -> tuple[bytes, bytes]:
        """Smallest and largest key over all inputs."""
        files = self.inputs + self.next_inputs
        return min(f.smallest for f in files), max(f.largest for f in files)


def level_target_bytes(level: int, policy: CompactionPolicy) -> int:
    """Size target of ``level >= 1``."""
    invariant(level >= 1, "only levels >= 1 have a byte target")
    return int(policy.level1_target_bytes * policy.level_size_ratio ** (level - 1))


def level_scores(version: Version, policy: CompactionPolicy) -> list[float]:
    """Score per level (the last level has none: it cannot be compacted further down)."""
    scores = [len(version.levels[0]) / policy.l0_compaction_trigger_files]
    for level in range(1, NUM_LEVELS - 1):
        scores.append(version.level_bytes(level) / level_target_bytes(level, policy))
    return scores


def pick_compaction(version: Version, policy: CompactionPolicy, cursors: dict[int, bytes]) -> Compaction | None:
    """The most urgent compaction, or None if every score is below 1.

    Args:
        version: the current tables.
        policy: thresholds.
        cursors: per level, the largest key of the last table compacted from it (updated
            by the caller after the compaction succeeds).
    """
    # BEGIN SOLUTION lsm-compaction
    scores = level_scores(version, policy)
    best = max(range(len(scores)), key=lambda lv: scores[lv])
    if scores[best] < 1:
        return None
    if best == 0:
        inputs = version.levels[0]
    else:
        files = version.levels[best]
        after = cursors.get(best)
        chosen = next((f for f in files if after is None or f.smallest > after), files[0])
        inputs = (chosen,)
    return expand(version, best, inputs)
    # END SOLUTION


def expand(version: Version, level: int, inputs: tuple[FileMeta, ...]) -> Compaction:
    """The compaction of ``inputs`` at ``level`` with every overlapping table of ``level + 1``."""
    smallest = min(f.smallest for f in inputs)
    largest = max(f.largest for f in inputs)
    return Compaction(level, inputs, tuple(version.overlapping(level + 1, smallest, largest)))


def tombstone_dropper(version: Version, c: Compaction) -> Callable[[bytes], bool]:
    """A predicate: may a tombstone for ``key`` be left out of ``c``'s output?

    Only if no level below the output level has a table whose key range covers ``key`` —
    otherwise dropping the tombstone would uncover an older value there. (Levels above the
    output hold only newer data; the output level's overlapping tables are inputs of ``c``.)
    """
    # BEGIN SOLUTION lsm-compaction
    smallest, largest = c.key_range()
    deeper = range(c.output_level + 1, NUM_LEVELS)
    if not any(version.overlapping(level, smallest, largest) for level in deeper):
        return lambda key: True
    return lambda key: not version.deeper_may_contain(c.output_level, key)
    # END SOLUTION


def write_merged(
    runs: Iterator[Run],
    *,
    drop_tombstone: Callable[[bytes], bool],
    new_file: Callable[[], tuple[int, WritableFile]],
    policy: CompactionPolicy,
) -> list[FileMeta]:
    """Write merged runs into output tables of about ``policy.table_target_bytes`` each.

    Args:
        runs: disjoint, increasing runs with one (newest) entry per key; ``None`` is a tombstone.
        drop_tombstone: whether a tombstone for this key may be left out.
        new_file: allocates a file number and opens its file for writing.
        policy: table shape.
    Returns:
        metadata of the written tables, in key order; each file is fsynced and closed.
    """
    # BEGIN SOLUTION lsm-compaction
    outputs: list[FileMeta] = []
    builder: TableBuilder | None = None
    current: tuple[int, WritableFile] | None = None
    for keys, values in runs:
        if None in values:
            kept = [(k, v) for k, v in zip(keys, values, strict=True) if v is not None or not drop_tombstone(k)]
            keys = [k for k, _ in kept]
            values = [v for _, v in kept]
        if not keys:
            continue
        if builder is None or current is None:
            current = new_file()
            builder = TableBuilder(
                current[1], block_size_bytes=policy.block_size_bytes, bloom_bits_per_key=policy.bloom_bits_per_key
            )
        builder.add_many(keys, values)
        if builder.data_bytes >= policy.table_target_bytes:
            outputs.append(finish_table(builder, *current))
            builder = current = None
    if builder is not None and current is not None:
        outputs.append(finish_table(builder, *current))
    return outputs
    # END SOLUTION


def finish_table(builder: TableBuilder, number: int, file: WritableFile) -> FileMeta:
    """Finish, fsync and close one table; return its metadata."""
    info = builder.finish()
    file.sync()
    file.close()
    return FileMeta(number, info.size_bytes, info.entries, info.tombstones, info.smallest, info.largest)
