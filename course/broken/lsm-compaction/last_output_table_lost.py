# ruff: noqa  (a patch fragment: names come from the file it patches)
"""A compaction writer that never finishes its last, partly filled output table: the keys at the end of the range vanish."""

FILE = "kvstore/lsm/compaction.py"
CAUGHT_BY = ['test_engine_matches_a_model_through_flushes_compactions_and_reopens']


def write_merged(
    runs: Iterator[Run],
    *,
    drop_tombstone: Callable[[bytes], bool],
    new_file: Callable[[], tuple[int, WritableFile]],
    policy: CompactionPolicy,
) -> list[FileMeta]:
    """Write merged runs into output tables of about ``policy.table_target_bytes`` each."""
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
    # BUG: the last table, if not yet full, is never finished
    return outputs
