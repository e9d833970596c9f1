# ruff: noqa  (a patch fragment: names come from the file it patches)
"""L0 kept sorted by smallest key instead of by file number (age): reads consult overlapping L0 files in the wrong order."""

FILE = "kvstore/lsm/manifest.py"
CAUGHT_BY = ['test_the_newest_l0_table_wins_whatever_the_key_ranges']


class Version:
    def apply(self, edit: VersionEdit) -> Version:
        """The version after ``edit``."""
        levels = [list(files) for files in self.levels]
        for level, number in edit.deleted:
            before = len(levels[level])
            levels[level] = [f for f in levels[level] if f.number != number]
            invariant(len(levels[level]) == before - 1, f"deleted file {number} was live at level {level}")
        for level, f in edit.added:
            invariant(0 <= level < NUM_LEVELS, "level in range")
            levels[level].append(f)
        for files in levels:
            files.sort(key=lambda f: f.smallest)  # BUG: L0 tables overlap; their order is their age
        result = Version(tuple(tuple(files) for files in levels))
        result.check_invariants()
        return result
