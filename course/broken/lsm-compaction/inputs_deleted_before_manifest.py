# ruff: noqa  (a patch fragment: names come from the file it patches)
"""Compaction removes its input tables before the manifest edit that drops them is durable: a crash in between leaves a manifest naming deleted files."""

FILE = "kvstore/lsm/engine.py"
CAUGHT_BY = ['test_a_crash_at_any_point_of_flushes_and_compactions_loses_no_acknowledged_write']


class Engine:
    def _log_and_apply(self, edit: VersionEdit, *, flushed: Memtable | None = None) -> None:
        """Make ``edit`` durable in the manifest, then install it and publish the new state."""
        new_readers = {f.number: self._open_table(f.number) for _, f in edit.added}
        with self._manifest_lock:
            for _, number in edit.deleted:  # BUG: the inputs go before the manifest stops naming them
                with contextlib.suppress(StorageError):
                    self.fs.remove(self._table_path(number))
            self.fs.sync_dir(self.path)  # the new tables' directory entries, before the manifest names them
            with self._lock:
                full = VersionEdit(edit.log_number, self._next_file, edit.deleted, edit.added)
            invariant(self._manifest is not None, "manifest open while the engine is")
            if self._manifest is not None:
                self._manifest.append(full)
            with self._lock:
                self._version = self._version.apply(full)
                self._readers.update(new_readers)
                dropped = [self._readers.pop(number) for _, number in full.deleted]
                if flushed is not None:
                    self._imms = tuple(m for m in self._imms if m is not flushed)
                self._publish()
                self._cond.notify_all()
        for reader in dropped:
            self._counters["bloom_negatives"] += reader.bloom_negatives
            self._counters["bloom_false_positives"] += reader.bloom_false_positives
            self._cache.evict_file(reader.number)
            with contextlib.suppress(StorageError):
                self.fs.remove(reader.path)
