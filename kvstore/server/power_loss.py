"""Power loss for a real node process: remember what was fsynced, then drop the rest.

Theory of operation. SIGKILL of a process loses nothing that was written: the
operating system still holds it. Power loss is harsher: every byte not yet
fsynced is gone. To test a real node against power loss, its storage runs on a
:class:`JournalingFileSystem` (switched on by ``[testing] power_loss_journal =
true``): a wrapper around the real file system that appends one line to a
journal each time a file is fsynced (with its size) or a directory is fsynced
(with its entries). The journal is ordinary buffered writes: it only has to
survive SIGKILL, which it does.

After the node is killed, :func:`simulate_power_loss` replays the journal and
makes the disk look as it would after a power cut:

* every file written through the wrapper is truncated to the size it had at
  its last fsync (0 if never); files written by other means (a snapshot's
  files, which their writer fsyncs itself) keep their size;
* a file whose directory entry was never fsynced is removed.

* a ``rename`` whose directory was not fsynced afterwards is undone: the
  renamed file gets its old name back, and a file it replaced is restored
  (the wrapper keeps a hidden hard link to it until the directory fsync).

Approximation, stated plainly: files removed are not brought back (both
stores remove only files that are already obsolete); the in-process simulated
disk (:class:`kvstore.fs.SimFileSystem`) models removals exactly too.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

from kvstore.fs import FileSystem, ForwardingFileSystem, WritableFile

JOURNAL_NAME = "power-loss.journal"
BACKUP_PREFIX = ".power-loss-backup-"


class _JournalingWritable:
    def __init__(self, inner: WritableFile, fs: JournalingFileSystem) -> None:
        self._inner = inner
        self._fs = fs
        self.path = inner.path

    def write(self, data: bytes) -> None:
        self._inner.write(data)

    def sync(self) -> None:
        self._inner.sync()
        self._fs.record({"op": "sync", "path": self.path, "size": self._inner.size()})

    def size(self) -> int:
        return self._inner.size()

    def close(self) -> None:
        self._inner.close()


class JournalingFileSystem(ForwardingFileSystem):
    """A :class:`~kvstore.fs.FileSystem` that journals every fsync (see the module docstring)."""

    def __init__(self, inner: FileSystem, root: str) -> None:
        super().__init__(inner)
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._lock = threading.Lock()  # the journal file and the backup counter
        # Renames and directory fsyncs, one at a time: the engine's writer and its flush thread
        # both fsync the engine's folder, and two fsyncs removing the same rename backup raced
        # (the second os.remove raised FileNotFoundError and stopped the node).
        self._dir_lock = threading.Lock()
        self._backups = 0
        self._journal = open(os.path.join(self.root, JOURNAL_NAME), "a", encoding="utf-8")  # noqa: SIM115
        self._baseline()

    def _baseline(self) -> None:
        """Whatever exists at start-up survived the last run: record it as durable."""
        for dirpath, _, names in os.walk(self.root):
            tracked = [n for n in names if n != JOURNAL_NAME and not n.startswith(BACKUP_PREFIX)]
            self.record({"op": "dir", "path": dirpath, "names": tracked})
            for n in tracked:
                path = os.path.join(dirpath, n)
                self.record({"op": "sync", "path": path, "size": os.path.getsize(path)})

    def record(self, entry: dict[str, object]) -> None:
        """Append one journal line (flushed, not fsynced: it only has to survive SIGKILL)."""
        with self._lock:
            self._journal.write(json.dumps(entry) + "\n")
            self._journal.flush()

    def open_write(self, path: str, *, append: bool = False) -> WritableFile:
        """Open for writing; the file is now tracked, and syncs of the handle are journaled."""
        handle = self._inner.open_write(path, append=append)
        self.record({"op": "open", "path": os.path.abspath(path)})
        return _JournalingWritable(handle, self)

    def make_dirs(self, path: str) -> None:
        """Create a directory (treated as durable at once, as by SimFileSystem)."""
        self._inner.make_dirs(path)
        self.record({"op": "dir", "path": os.path.abspath(path), "names": self._inner.list_dir(path)})

    def rename(self, src: str, dst: str) -> None:
        """Rename; a replaced ``dst`` is kept as a hidden backup until its directory is fsynced.

        So a power cut before that fsync can put the old file back, as a real
        disk may (the rename was not yet durable).
        """
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        backup = ""
        with self._dir_lock:
            if os.path.exists(dst):
                with self._lock:
                    self._backups += 1
                    backup = os.path.join(os.path.dirname(dst), f"{BACKUP_PREFIX}{self._backups}")
                os.link(dst, backup)
            self._inner.rename(src, dst)
            self.record({"op": "rename", "src": src, "dst": dst, "backup": backup})

    def link(self, src: str, dst: str) -> None:
        """Hard link (the new name needs a directory fsync to be durable)."""
        self._inner.link(src, dst)
        self.record({"op": "sync", "path": os.path.abspath(dst), "size": self._inner.file_size(dst)})

    def sync_dir(self, path: str) -> None:
        """fsync a directory; its current entries (and its renames) become durable."""
        with self._dir_lock:
            self._inner.sync_dir(path)
            names = [n for n in self._inner.list_dir(path) if not n.startswith(BACKUP_PREFIX)]
            self.record({"op": "dir", "path": os.path.abspath(path), "names": names})
            for n in self._inner.list_dir(path):
                if n.startswith(BACKUP_PREFIX):  # renames in this folder are durable now
                    os.remove(os.path.join(path, n))

    def close(self) -> None:
        """Close the journal."""
        with self._lock:
            self._journal.close()


@dataclass(frozen=True, slots=True)
class PowerLossReport:
    """What :func:`simulate_power_loss` took away (proof that the fault happened)."""

    bytes_dropped: int
    files_truncated: int
    files_removed: int


def simulate_power_loss(root: str) -> PowerLossReport:
    """Make ``root`` look as it would after a power cut (the node must be dead). See the module docstring."""
    root = os.path.abspath(root)
    journal = os.path.join(root, JOURNAL_NAME)
    sizes: dict[str, int] = {}
    names: dict[str, set[str]] = {}
    pending: list[dict[str, str]] = []  # renames not yet made durable by a directory fsync
    with open(journal, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn last line
            e = json.loads(line)
            if e["op"] == "open":
                sizes.setdefault(e["path"], 0)
            elif e["op"] == "sync":
                sizes[e["path"]] = e["size"]
            elif e["op"] == "dir":
                names[e["path"]] = set(e["names"])
                pending = [r for r in pending if os.path.dirname(r["dst"]) != e["path"]]
            elif e["op"] == "rename":
                if e.get("backup") and e["dst"] in sizes:
                    sizes[e["backup"]] = sizes[e["dst"]]
                if e["src"] in sizes:
                    sizes[e["dst"]] = sizes.pop(e["src"])
                pending.append(e)
    for r in reversed(pending):  # undo, newest first: the new file goes back to its old name
        if os.path.exists(r["dst"]):
            os.rename(r["dst"], r["src"])
            if r["dst"] in sizes:
                sizes[r["src"]] = sizes.pop(r["dst"])
        if r.get("backup") and os.path.exists(r["backup"]):
            os.rename(r["backup"], r["dst"])
            sizes[r["dst"]] = sizes.pop(r["backup"], 0)
    dropped = truncated = removed = 0
    for directory, durable in names.items():
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if not os.path.isfile(path) or path == journal:
                continue
            if name.startswith(BACKUP_PREFIX):  # a durable rename's leftover
                os.remove(path)
                continue
            size = os.path.getsize(path)
            if name not in durable:
                os.remove(path)
                removed += 1
                dropped += size
            elif path in sizes and size > sizes[path]:
                os.truncate(path, sizes[path])
                truncated += 1
                dropped += size - sizes.get(path, 0)
    os.remove(journal)
    return PowerLossReport(dropped, truncated, removed)
