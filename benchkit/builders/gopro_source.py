"""GOPRO_Large_all source trees: listing/validation per sequence, and the embedded demo tree.

Layout (Nah et al. 2017, "GOPRO_Large_all": every 240 fps sharp frame of each clip)::

    <root>/train/<SEQUENCE>/000001.png, 000002.png, ...
    <root>/test/<SEQUENCE>/...

:func:`scan_split` checks each sequence on its own (no sequence can abort another)
and returns the usable *runs*: maximal stretches of consecutive frame numbers
with readable PNG headers of the sequence's common size. Problems (empty folder,
missing frame numbers, non-numeric names, unreadable headers, size mismatch)
are returned as report entries. Frames whose pixel data turns out corrupt are
only found when decoded by the build (each frame is decoded once, there) and
fail just the samples that need them.

:func:`embedded_tree` writes a small procedurally generated tree of the same
shape (camera path over real photographs bundled with scikit-image plus a
moving object), deterministic, cached under ``benchkit.embedded.cache_root()``.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPLITS = ("train", "test")

SOURCE_HELP = """\
Expected source: the GoPro deblurring dataset with ALL sharp frames ("GOPRO_Large_all",
Nah, Kim & Lee, CVPR 2017), unpacked so that the folder you pass looks like

    GOPRO_Large_all/
      train/GOPR0372_07_00/000001.png 000002.png ...   (every 240 fps frame, 1280x720 RGB)
      train/GOPR0372_07_01/...
      test/GOPR0384_11_00/...

Download: the GoPro dataset page of its authors, https://seungjunnah.github.io/Datasets/gopro
(archive GOPRO_Large_all; read the licence stated there). Unzip it and pass the GOPRO_Large_all
folder with --source. Frame files
must be PNGs named by their frame number; a gap in the numbering splits a sequence into runs.
For a quick try without downloading anything use --source embedded (a small generated tree)."""


@dataclass(frozen=True)
class Run:
    """A stretch of consecutive, header-valid frames of one sequence.

    ``frames`` holds (frame number, path relative to the source root) in frame order.
    """

    split: str
    sequence: str
    index: int
    frames: tuple
    width: int
    height: int

    @property
    def first(self) -> int:
        return self.frames[0][0]

    def __len__(self) -> int:
        return len(self.frames)


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR (reads 24 bytes); ValueError if it is not a readable PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError("not a PNG file (bad signature/header)" if head else "file is empty (0 bytes)")
    w, h = struct.unpack(">II", head[16:24])
    if w == 0 or h == 0:
        raise ValueError(f"PNG header declares a {w}x{h} image")
    return int(w), int(h)


def _problem(split, seq, path, error, fix):
    return {"key": f"source/{split}/{seq}", "path": str(path), "error": error, "fix": fix}


def scan_sequence(root: Path, split: str, seq_dir: Path):
    """Validate one sequence folder; returns (runs, problems). Never raises for content problems."""
    problems = []
    seq = seq_dir.name
    numbered, others = [], []
    for p in sorted(seq_dir.iterdir()):
        if not p.is_file() or p.name.endswith(".tmp") or p.name.startswith(".benchkit-tmp-"):
            continue
        if p.suffix.lower() == ".png" and p.stem.isascii() and p.stem.isdigit():  # "¹".isdigit() but int() fails
            numbered.append((int(p.stem), p))
        elif p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            others.append(p)
    if others:
        problems.append(_problem(split, seq, others[0], f"{len(others)} image file(s) not named by frame number "
                                 f"(e.g. {others[0].name}); ignored", "name frames 000001.png, 000002.png, ..."))
    if not numbered:
        problems.append(_problem(split, seq, seq_dir, "sequence folder holds no numbered PNG frames; skipped",
                                 "re-extract this sequence from GOPRO_Large_all.zip or delete the folder"))
        return [], problems
    numbered.sort()
    dup = [n for n, c in Counter(n for n, _ in numbered).items() if c > 1]
    if dup:
        problems.append(_problem(split, seq, seq_dir, f"frame numbers used twice: {dup[:5]}; those are skipped",
                                 "keep one file per frame number"))
        numbered = [(n, p) for n, p in numbered if n not in set(dup)]
    sizes, bad, paths = {}, [], dict(numbered)
    for n, p in numbered:
        try:
            sizes[n] = png_size(p)
        except (OSError, ValueError) as e:
            bad.append(n)
            problems.append(_problem(split, seq, p, f"unreadable frame: {e}; treated as a gap",
                                     "re-extract this frame from GOPRO_Large_all.zip"))
    if not sizes:
        return [], problems
    common = Counter(sizes.values()).most_common(1)[0][0]
    for n, wh in sizes.items():
        if wh != common:
            problems.append(_problem(split, seq, paths[n], f"frame {n} is {wh[0]}x{wh[1]}, the sequence "
                                     f"is {common[0]}x{common[1]}; treated as a gap", "re-extract this frame"))
    good = [(n, p) for n, p in numbered if sizes.get(n) == common]
    runs, cur = [], []
    for n, p in good:
        if cur and n != cur[-1][0] + 1:
            runs.append(cur)
            cur = []
        cur.append((n, p))
    if cur:
        runs.append(cur)
    nums = [n for n, _ in numbered]
    missing = sorted(set(range(nums[0], nums[-1] + 1)) - set(nums))
    if missing:
        spans = _spans(missing)
        problems.append(_problem(split, seq, seq_dir, f"missing frame numbers {spans}; the sequence is split "
                                 f"into {len(runs)} runs (no sample crosses a gap)",
                                 "re-extract the missing frames if they should exist"))
    out = []
    for i, r in enumerate(runs):
        out.append(Run(split, seq, i, tuple((n, p.relative_to(root).as_posix()) for n, p in r),
                       common[0], common[1]))
    return out, problems


def _spans(nums) -> str:
    parts, start, prev = [], nums[0], nums[0]
    for n in nums[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts[:8]) + (" ..." if len(parts) > 8 else "")


def scan_split(root, split: str):
    """All runs + problems of ``<root>/<split>`` (sequences sorted by name)."""
    root = Path(root)
    d = root / split
    runs, problems = [], []
    for seq_dir in sorted(p for p in d.iterdir() if p.is_dir()):
        r, pr = scan_sequence(root, split, seq_dir)
        runs += r
        problems += pr
    return runs, problems


def check_layout(root, split: str) -> str:
    """'' if ``root`` looks like GOPRO_Large_all for ``split``, else what is wrong (for MissingSourceError)."""
    if root is None:
        return "no source folder given"
    root = Path(root)
    if not root.is_dir():
        return f"source folder {root} not found"
    d = root / split
    if not d.is_dir():
        found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())[:8]) or "nothing"
        return f"{root} has no {split}/ folder (found: {found})"
    if not any(p.is_dir() for p in d.iterdir()):
        return f"{d} holds no sequence folders"
    return ""


# ----------------------------------------------------------------------------- embedded demo tree

EMBEDDED_VERSION = 1
#: (split, sequence name, background image, object image, frames, camera speed px/frame, seed)
EMBEDDED_SEQUENCES = (
    ("train", "EMB0001_00_00", "astronaut", "coffee", 48, 1.6, 11),
    ("train", "EMB0002_00_00", "coffee", "chelsea", 48, 2.2, 12),
    ("test", "EMB0003_00_00", "chelsea", "astronaut", 44, 1.9, 13),
)
_EMBEDDED_FILES = {"astronaut": ("skimage", "data/astronaut.png"), "coffee": ("skimage", "data/coffee.png"),
                   "chelsea": ("skimage", "data/chelsea.png")}


def render_sequence(background, sprite, n_frames: int, size: int, speed: float, seed: int):
    """uint8 RGB frames (n_frames, size, size, 3) of a ``size``-px camera window gliding over ``background``
    (smooth random path, ``speed`` px/frame, bilinear sub-pixel sampling) with ``sprite`` (a circular
    cut-out) moving on its own path in front. Deterministic given the inputs and ``seed``."""
    import cv2
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    bg = np.asarray(background, np.float32)
    h, w = bg.shape[:2]
    margin = size / 2 + 2
    pos = np.array([rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)])
    ang = rng.uniform(0, 2 * np.pi)
    spr = np.asarray(sprite, np.float32)
    s = spr.shape[0]
    yy, xx = np.mgrid[:s, :s]
    mask = (((yy - s / 2 + 0.5) ** 2 + (xx - s / 2 + 0.5) ** 2) <= (s / 2 - 1) ** 2).astype(np.float32)[..., None]
    opos = np.array([rng.uniform(0, size - s), rng.uniform(0, size - s)])
    ovel = rng.uniform(-0.8, 0.8, 2) * speed
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for i in range(n_frames):
        ang += rng.normal(0, 0.08)
        nxt = pos + speed * np.array([np.cos(ang), np.sin(ang)])
        if not (margin <= nxt[0] <= w - margin and margin <= nxt[1] <= h - margin):
            ang += np.pi
            nxt = pos + speed * np.array([np.cos(ang), np.sin(ang)])
        pos = nxt
        m = np.float32([[1, 0, pos[0] - size / 2], [0, 1, pos[1] - size / 2]])
        view = cv2.warpAffine(bg, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT)
        opos = opos + ovel
        for k in range(2):
            if not 0 <= opos[k] <= size - s:
                ovel[k] = -ovel[k]
                opos[k] = min(max(opos[k], 0), size - s)
        ms = np.float32([[1, 0, opos[0]], [0, 1, opos[1]]])
        layer = cv2.warpAffine(spr * mask, ms, (size, size), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(mask, ms, (size, size), flags=cv2.INTER_LINEAR)[..., None]
        view = view * (1 - alpha) + layer
        frames[i] = np.clip(np.rint(view * 255), 0, 255).astype(np.uint8)
    return frames


def write_tree(dest, sequences, size: int) -> Path:
    """Write a GOPRO_Large_all-shaped tree for ``sequences`` (see EMBEDDED_SEQUENCES) into ``dest``."""
    import cv2

    from benchkit.embedded import package_file
    from benchkit.fsio import atomic_write_bytes
    from benchkit.images import encode_png, read_image

    dest = Path(dest)
    cache = {}

    def load(name):
        if name not in cache:
            pkg, rel = _EMBEDDED_FILES[name]
            cache[name] = read_image(package_file(pkg, rel))
        return cache[name]

    for split, seq, bgname, objname, n, speed, seed in sequences:
        bg = load(bgname)
        obj = load(objname)
        osz = max(8, size // 4)
        sprite = cv2.resize(obj[: min(obj.shape[:2]), : min(obj.shape[:2])], (osz, osz),
                            interpolation=cv2.INTER_AREA)
        # scale the background so the window sees a moderately detailed part of it
        scale = 2.0 * size / min(bg.shape[:2])
        bgs = cv2.resize(bg, (round(bg.shape[1] * scale), round(bg.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        frames = render_sequence(bgs, sprite, n, size, speed, seed)
        for i, fr in enumerate(frames):
            atomic_write_bytes(dest / split / seq / f"{i + 1:06d}.png", encode_png(fr))
    return dest


def embedded_tree(size: int = 128) -> Path:
    """The embedded demo GOPRO_Large_all tree (2 train + 1 test sequences, 44-48 frames of size x size),
    generated on first use under ``cache_root()`` (about a second) and reused afterwards."""
    from benchkit.embedded import cache_root
    from benchkit.fsio import atomic_write_text

    dest = cache_root() / f"gopro-embedded-v{EMBEDDED_VERSION}-{size}"
    marker = dest / ".complete"
    if not marker.exists():
        write_tree(dest, EMBEDDED_SEQUENCES, size)
        atomic_write_text(marker, "ok\n")
    return dest
