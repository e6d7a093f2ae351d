"""Method outputs of one (dataset, method): PNG files plus ``index.jsonl`` (tag, dataset fingerprint,
sha256, size, seconds, peak memory, seed per output).

An output is reused when its index line has the same method tag and dataset fingerprint and the file is
unchanged: same size and an mtime older than the index (the file is written before its line), else the same
sha256 (always the sha256 with ``verify``, and for lines written before sizes were recorded); otherwise it
is regenerated and the event reported.
"""

from __future__ import annotations

from pathlib import Path

INDEX = "index.jsonl"


def write_output_file(folder, key, img) -> dict:
    """PNG of output ``img`` as ``<folder>/<key>.png`` (atomic); returns its index fields: path, sha256, size."""
    from benchkit.images import write_png

    rel = f"{key}.png"
    path = Path(folder) / rel
    sha = write_png(path, img, fsync=False)  # a file lost to power loss fails lookup()'s size check
    return {"path": rel, "sha256": sha, "size": path.stat().st_size}


class OutputStore:
    """Method outputs of one (dataset, method) with their index."""

    def __init__(self, folder: Path, verify: bool = False):
        from benchkit.manifest import ends_with_newline, read_jsonl_lenient
        from benchkit.runner import FileCheck

        self.dir = Path(folder)
        lines, bad = read_jsonl_lenient(self.dir / INDEX)  # an index is a cache: a damaged line's output is redone
        self.index = {r["key"]: r for r in lines if isinstance(r, dict) and isinstance(r.get("key"), str)}
        self.damaged = bad + sum(1 for r in lines if not (isinstance(r, dict) and isinstance(r.get("key"), str)))
        # rewritten on compaction; and a truncated last line (killed writer) must not swallow the next append
        self._new = bool(self.damaged)
        self._newline_first = not ends_with_newline(self.dir / INDEX)
        self._check = FileCheck(verify)
        idx = self.dir / INDEX
        self._since = idx.stat().st_mtime_ns if idx.is_file() else 0

    def lookup(self, key, tag, dataset_fp):
        """(record, problem): the valid cached record, or None and why not ('' if simply absent)."""
        r = self.index.get(key)
        if r is None or r.get("tag") != tag or r.get("dataset") != dataset_fp:
            return None, ""
        p = self.dir / r["path"]
        if not p.is_file():
            return None, f"cached output {p} is missing"
        if not self._check.same(str(p), r["sha256"], r.get("size"), self._since):
            return None, f"cached output {p} does not match its recorded sha256 (corrupt or edited)"
        return r, ""

    def write(self, key, img, **fields) -> dict:
        """Write output ``img`` (float32 RGB in [0, 1]) of ``key`` and index it with ``fields``."""
        return self.record(key, write_output_file(self.dir, key, img), **fields)

    def record(self, key, file: dict, **fields) -> dict:
        """Index an output file already written by :func:`write_output_file` (e.g. by a Dask worker)."""
        from benchkit.manifest import dumps_line

        rec = {"key": key, **file, **fields}
        with open(self.dir / INDEX, "a", encoding="utf-8") as f:
            f.write(("\n" if self._newline_first else "") + dumps_line(rec) + "\n")
        self._newline_first = False
        self.index[key] = rec
        self._new = True
        return rec

    def compact(self) -> None:
        from benchkit.manifest import write_sorted

        if self._new:
            write_sorted(self.dir / INDEX, self.index.values())
            self._new = False
