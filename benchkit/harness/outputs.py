"""Method outputs of one (dataset, method): PNG files plus ``index.jsonl`` (tag, dataset fingerprint,
sha256, seconds, peak memory, seed per output).

An output is reused when its index line has the same method tag and dataset fingerprint and the file
still has the recorded sha256; otherwise it is regenerated and the event reported.
"""

from __future__ import annotations

from pathlib import Path

INDEX = "index.jsonl"


class OutputStore:
    """Method outputs of one (dataset, method) with their index."""

    def __init__(self, folder: Path):
        from benchkit.manifest import read_jsonl

        self.dir = Path(folder)
        self.index = {r["key"]: r for r in read_jsonl(self.dir / INDEX)}
        self._new = False

    def lookup(self, key, tag, dataset_fp):
        """(record, problem): the valid cached record, or None and why not ('' if simply absent)."""
        from benchkit.fsio import sha256_file

        r = self.index.get(key)
        if r is None or r.get("tag") != tag or r.get("dataset") != dataset_fp:
            return None, ""
        p = self.dir / r["path"]
        if not p.is_file():
            return None, f"cached output {p} is missing"
        if sha256_file(p) != r["sha256"]:
            return None, f"cached output {p} does not match its recorded sha256 (corrupt or edited)"
        return r, ""

    def write(self, key, img, **fields) -> dict:
        from benchkit.images import write_png
        from benchkit.manifest import dumps_line

        rel = f"{key}.png"
        sha = write_png(self.dir / rel, img, fsync=False)  # lookup() re-hashes: a file lost to power loss is redone
        rec = {"key": key, "path": rel, "sha256": sha, **fields}
        with open(self.dir / INDEX, "a", encoding="utf-8") as f:
            f.write(dumps_line(rec) + "\n")
        self.index[key] = rec
        self._new = True
        return rec

    def compact(self) -> None:
        from benchkit.manifest import write_sorted

        if self._new:
            write_sorted(self.dir / INDEX, self.index.values())
            self._new = False
