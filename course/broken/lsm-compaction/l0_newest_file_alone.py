# ruff: noqa  (a patch fragment: names come from the file it patches)
"""An L0 compaction that takes only the newest L0 table: it moves below older tables that overlap it, which then shadow it."""

FILE = "kvstore/lsm/compaction.py"
CAUGHT_BY = ['test_engine_matches_a_model_through_flushes_compactions_and_reopens']


def pick_compaction(version: Version, policy: CompactionPolicy, cursors: dict[int, bytes]) -> Compaction | None:
    """The most urgent compaction, or None if every score is below 1."""
    scores = level_scores(version, policy)
    best = max(range(len(scores)), key=lambda lv: scores[lv])
    if scores[best] < 1:
        return None
    if best == 0:
        inputs = version.levels[0][-1:]  # BUG: every L0 table may overlap; they must go down together
    else:
        files = version.levels[best]
        after = cursors.get(best)
        chosen = next((f for f in files if after is None or f.smallest > after), files[0])
        inputs = (chosen,)
    return expand(version, best, inputs)
