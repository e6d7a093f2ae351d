"""GoPro frame-averaging builders: ``gopro-enlarged`` (FideDiff Sec. 3.4, Table 1) and ``gopro-test``.

GoPro (Nah et al. 2017) was filmed at 240 fps; a blurry image is the average of
``n`` consecutive sharp frames and its target is the middle frame. FideDiff maps
``n`` to a diffusion timestep ``t = g(n) = (n - 1) * 20`` (``g(1) = 0``) and
enlarges the train split to 7,877 pairs (n = 5: 838, 7: 980, 9: 869, 11: 2,081,
13: 1,900, 15: 1,209) so that every blurry sample lies on a *backward trajectory*
of at least 3 blur levels that share its centre frame.

How the enlarged plan is built (deterministic from the root seed, independent of
the worker count; computed once in the parent):

1. per-n totals: the configured plan (default Table 1), multiplied by ``scale``.
   ``scale: null`` (auto) = ``min(1, G_cap / G_plan)`` with ``G_plan =
   floor(sum(plan) / min_levels)`` groups and ``G_cap = floor(centre_fraction *
   E)``, ``E`` = centre frames that fit the largest window; so the real GoPro
   train split (about 2,625 groups needed, tens of thousands of frames) gets Table
   1 exactly and smaller sources a proportional plan. Scaled totals use
   largest-remainder rounding of ``scale * count`` to ``round(scale * total)``
   (ties: smaller n first).
2. ``G = floor(total / min_levels)`` groups; the levels are dealt to groups
   cyclically (level by level, ascending n, continuing where the previous level
   stopped), so no group holds a level twice and every group holds
   ``floor(total/G)`` or ``ceil(total/G)`` >= ``min_levels`` levels.
3. the level sets are shuffled with ``rng_for(seed, "gopro-plan/<split>")``;
   groups needing the widest window pick their centre first, uniformly among
   unused frames whose window fits inside one run (a gap-free stretch of one
   sequence), so windows never cross a gap or a sequence boundary.

Averaging (exact integer arithmetic, so results never depend on chunking or
summation order and are bit-identical across machines):

- ``gamma`` (default, like GoPro's ``blur_gamma``): each 8-bit value ``v`` is
  linearised to ``round((v/255)^gamma * 2^24)``, summed exactly, and re-encoded
  as ``round(255 * (sum / (n * 2^24))^(1/gamma))`` via exact integer thresholds.
- ``linear`` (linear camera response): ``round(sum(v) / n)``, halves rounded up.

Work is split into *segments*: maximal stretches of a run covered by the
windows of its chosen centres. One job = one segment: its frames are decoded
once, in order, into a ring of prefix sums (``P[i+1] = P[i] + lin(frame i)``,
uint32 with wrap-around, exact because a window sum stays below 2^32), and each
window sum is one subtraction. The sharp target is the source PNG copied verbatim
when it is a plain 8-bit RGB PNG (re-encoded otherwise). Peak memory per worker
~ ``H*W*3*(16*4 + 6*4)`` bytes (16 uint32 prefix buffers + linearised frame,
window sum and re-encode temporaries) + 16 encoded source frames (+ 16 decoded
uint8 frames only for sources that are not plain RGB8 PNGs): about 250 MB for
GoPro's 1280x720 frames (measured: 255 MB tracemalloc peak for a 720p build;
18 MB for the 128x128 embedded source).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Literal

from benchkit.builders.base import DatasetBuilder
from benchkit.builders.gopro_source import PNG_SIGNATURE, SOURCE_HELP, check_layout, embedded_tree, scan_split
from benchkit.errors import BadInputError, BenchkitError, ConfigError, MissingSourceError
from benchkit.runner import Deferred, Encoded, Job, Sample, SampleFailure

FPS = 240
#: FideDiff Table 1, "GoPro (Enlarged)": n -> pairs (sum 7,877).
TABLE1_ENLARGED = {5: 838, 7: 980, 9: 869, 11: 2081, 13: 1900, 15: 1209}
QBITS = 24  # fixed-point bits of linearised values (gamma mode)
MAX_N = 255  # window sums of n * 2^QBITS must stay below 2^32

CITATION = """\
- S. Nah, T. H. Kim, K. M. Lee. Deep Multi-scale Convolutional Neural Network for Dynamic Scene Deblurring.
  CVPR 2017 (GoPro dataset).
- FideDiff: Efficient Diffusion Model for High-Fidelity Image Motion Deblurring (enlarged GoPro, t = (n-1)*20)."""


def t_of_n(n: int) -> int:
    """FideDiff's timestep for an n-frame average: g(n) = (n - 1) * 20; g(1) = 0."""
    return (int(n) - 1) * 20


def largest_remainder(plan: dict, scale: float) -> dict:
    """Scale per-n counts by ``scale`` to ``round(scale * total)`` with largest-remainder rounding
    (ties broken toward smaller n)."""
    from fractions import Fraction

    s = Fraction(scale).limit_denominator(10**9)
    total = sum(plan.values())
    target = round(s * total)
    exact = {n: s * c for n, c in plan.items()}
    out = {n: int(v) for n, v in exact.items()}  # floor (non-negative)
    left = target - sum(out.values())
    order = sorted(plan, key=lambda n: (-(exact[n] - out[n]), n))
    for n in order[:max(0, left)]:
        out[n] += 1
    return out


def deal_levels(counts: dict, n_groups: int) -> list[tuple]:
    """Deal ``counts[n]`` copies of each level n (ascending) cyclically over ``n_groups`` groups."""
    groups = [[] for _ in range(n_groups)]
    p = 0
    for n in sorted(counts):
        c = counts[n]
        if c > n_groups:
            raise ConfigError(f"plan: {c} samples at n={n} need {c} distinct centre frames but only {n_groups} "
                              f"groups exist (total/min_levels); lower min_levels or flatten the plan")
        for i in range(c):
            groups[(p + i) % n_groups].append(n)
        p = (p + c) % n_groups
    return [tuple(sorted(g)) for g in groups]


# ----------------------------------------------------------------------------- averaging kernels


@cache
def _lin_table(averaging: str, gamma: float):
    """int32 LUT 8-bit -> linear value: round((v/255)^gamma * 2^QBITS) (gamma) or v itself (linear)."""
    import numpy as np

    v = np.arange(256, dtype=np.float64)
    if averaging == "linear":
        return v.astype(np.int32)
    return np.rint((v / 255.0) ** gamma * (1 << QBITS)).astype(np.int32)


@cache
def _gamma_encoder(n: int, gamma: float):
    """Exact integer re-encoder for window sums of ``n`` linearised frames: (coarse LUT, shift, thresholds).

    out(S) = #{k in 1..255 : S >= T_k}, T_k = ceil(n * 2^QBITS * ((k - 0.5)/255)^gamma); the coarse LUT
    holds out() at multiples of 2^shift, where 2^shift is below the smallest threshold gap, so one
    comparison with the next threshold finishes the lookup.
    """
    import numpy as np

    q = n * (1 << QBITS)
    k = np.arange(1, 256, dtype=np.float64)
    thr = np.ceil(q * ((k - 0.5) / 255.0) ** gamma).astype(np.int64)
    gap = int(np.min(np.diff(np.concatenate([[0], thr]))))
    shift = max(0, gap.bit_length() - 1)
    while shift > 0 and (1 << shift) > gap:
        shift -= 1
    size = (q >> shift) + 1  # coarse[j] = out(j * 2^shift) = #{k : ceil(T_k / 2^shift) <= j}
    idx = np.minimum(-(-thr // (1 << shift)), size)
    coarse = np.repeat(np.arange(256, dtype=np.uint8), np.diff(np.concatenate([[0], idx, [size]])))
    nxt = np.concatenate([thr, [2**32 - 1]]).astype(np.uint32)  # nxt[o] = threshold to reach o + 1
    return coarse, shift, nxt


def encode_window(S, n: int, averaging: str, gamma: float):
    """uint8 image from an exact window sum ``S`` (uint32) of ``n`` frames."""
    import numpy as np

    if averaging == "linear":
        return ((S * np.uint32(2) + np.uint32(n)) // np.uint32(2 * n)).astype(np.uint8)
    coarse, shift, nxt = _gamma_encoder(int(n), float(gamma))
    o = np.take(coarse, S >> np.uint32(shift), mode="clip")  # indices are in range by construction
    o += S >= np.take(nxt, o, mode="clip")
    return o


def linearise(bgr, averaging: str, gamma: float, out=None):
    """uint32 linear values of an 8-bit image (``out``: optional int32 buffer of the same shape)."""
    import cv2
    import numpy as np

    lut = _lin_table(averaging, float(gamma))
    res = cv2.LUT(bgr, lut, dst=out) if out is not None else cv2.LUT(bgr, lut)
    return res.view(np.uint32)


def is_plain_rgb8_png(data: bytes) -> bool:
    """True for a non-interlaced 8-bit RGB PNG: its bytes can serve as the sharp target unchanged
    (decoding them gives exactly the pixels the blur was averaged from)."""
    return len(data) > 29 and data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and data[24] == 8 \
        and data[25] == 2 and data[28] == 0


def png_bytes(bgr) -> bytes:
    """PNG bytes of an 8-bit BGR image with benchkit's codec settings (same bytes as images.encode_png)."""
    import cv2

    from benchkit.images import png_params

    ok, buf = cv2.imencode(".png", bgr, png_params())
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def png(bgr) -> Encoded:
    """:func:`png_bytes` now, as an :class:`Encoded` output (for images in buffers that are reused)."""
    return Encoded(".png", png_bytes(bgr))


def png_later(bgr) -> Deferred:
    """:func:`png_bytes` left to the runner's writer (overlaps the next sample's averaging); ``bgr`` must be a
    fresh array that nothing modifies afterwards."""
    return Deferred(".png", partial(png_bytes, bgr))


def decode_frame(data: bytes, path):
    """8-bit BGR frame from PNG bytes (gray is expanded, alpha dropped, 16-bit reduced by OpenCV)."""
    import cv2
    import numpy as np

    if not data:
        raise BadInputError(path, "frame file is empty (0 bytes)", "re-extract this frame")
    from benchkit.images import check_size

    check_size(data, path)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInputError(path, "cannot decode frame (corrupt or truncated PNG)",
                            "re-extract this frame from GOPRO_Large_all.zip")
    return img


# ----------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class EnlargedConfig:
    """gopro-enlarged settings. ``plan``: n -> pairs (odd n >= 3; default FideDiff Table 1)."""

    split: Literal["train", "test"] = "train"
    plan: dict[int, int] = field(default_factory=lambda: dict(TABLE1_ENLARGED))
    scale: float | None = None  # null = auto (1.0 for the real train split, proportional otherwise)
    centre_fraction: float = 0.25  # auto scale: at most this fraction of eligible frames become centres
    min_levels: int = 3  # blur levels per trajectory group (FideDiff: >= 3)
    averaging: Literal["gamma", "linear"] = "gamma"
    gamma: float = 2.2

    def __post_init__(self):
        from benchkit.config import check_number
        from benchkit.errors import ConfigValueError

        if not isinstance(self.plan, dict):
            raise ConfigValueError(f"plan = {self.plan!r}: must map odd n in [3, {MAX_N}] to a pair count >= 0; "
                                   "fix: e.g. plan: {11: 100}")
        for n, c in self.plan.items():
            try:
                n_int = int(n)
            except (TypeError, ValueError):
                raise ConfigValueError(f"plan key {n!r}: must be an odd integer n in [3, {MAX_N}]; "
                                       "fix: e.g. plan: {11: 100}") from None
            check_number(f"plan[{n_int}] (n)", n_int, 3, MAX_N, odd=True)
            check_number(f"plan[{n_int}] (count)", c, 0, 10_000_000, integer=True)
        if not any(c > 0 for c in self.plan.values()):
            raise ConfigValueError(f"plan: no n has a count > 0 (got {self.plan}); fix: give at least one, "
                                   "e.g. plan: {11: 100}")
        if self.scale is not None:
            check_number("scale", self.scale, 0.0, 100.0, lo_open=True)
        check_number("centre_fraction", self.centre_fraction, 0.0, 1.0, lo_open=True)
        check_number("min_levels", self.min_levels, 1, MAX_N, integer=True)
        check_number("gamma", self.gamma, 0.0, 10.0, lo_open=True)


@dataclass(frozen=True)
class SplitTestConfig:
    """gopro-test settings: GoPro-style test pairs, non-overlapping n-frame windows (n = 11 -> t = 200)."""

    split: Literal["train", "test"] = "test"
    n: int = 11
    stride: int | None = None  # frames between consecutive centres; null = n (non-overlapping)
    averaging: Literal["gamma", "linear"] = "gamma"
    gamma: float = 2.2

    def __post_init__(self):
        from benchkit.config import check_number

        check_number("n", self.n, 3, MAX_N, odd=True)
        if self.stride is not None:
            check_number("stride", self.stride, 1, 100_000, integer=True)
        check_number("gamma", self.gamma, 0.0, 10.0, lo_open=True)


# ----------------------------------------------------------------------------- builders


def sample_key(seq: str, centre: int, n: int) -> str:
    return f"{seq}/{centre:06d}_n{n:02d}"


class _FrameAveragingBuilder(DatasetBuilder):
    """Shared machinery: source scan, segment jobs, streaming prefix-sum averaging, replay."""

    source_help = SOURCE_HELP
    source_license = ("GoPro dataset (Nah et al. 2017): the licence stated on https://seungjunnah.github.io/Datasets/gopro "
                      "applies to samples built from it. "
                      "The embedded demo source is rendered from scikit-image sample photographs (public domain / "
                      "CC0).")
    citation = CITATION

    def __init__(self, config=None, source=None):
        super().__init__(config, source)
        self._scan = None
        self._info: dict = {}

    def __getstate__(self):  # workers only need config + source: do not ship the scan to every task
        state = dict(self.__dict__)
        state["_scan"], state["_info"] = None, {}
        return state

    @classmethod
    def resolve_source(cls, source):
        """``'embedded'`` -> the generated demo tree (cached); anything else unchanged."""
        return embedded_tree() if str(source) == "embedded" else source

    # -- source -------------------------------------------------------------------------------------------
    def check_source(self) -> None:
        problem = check_layout(self.source, self.config.split)
        if problem:
            raise MissingSourceError(f"{self.name}: {problem}.\n{self.source_help}")
        runs, problems = self.scan()
        if not runs:
            detail = "\n".join(f"  {p['path']}: {p['error']}" for p in problems[:10])
            raise MissingSourceError(f"{self.name}: no usable frames under {self.source / self.config.split}.\n"
                                     f"{detail}\n{self.source_help}")

    def scan(self):
        if self._scan is None:
            if check_layout(self.source, self.config.split):
                self.check_source()
            self._scan = scan_split(self.source, self.config.split)
        return self._scan

    def source_problems(self) -> list[dict]:
        return list(self.scan()[1]) + list(self._info.get("plan_problems", []))

    # -- jobs ---------------------------------------------------------------------------------------------
    def groups(self, runs) -> list[tuple[int, int, tuple]]:
        """(run position in ``runs``, centre frame number, sorted levels) for every trajectory group."""
        raise BenchkitError("subclass must define groups()")

    def jobs(self) -> list[Job]:
        runs, _ = self.scan()
        by_run: dict[int, list] = {}
        for ri, c, levels in self.groups(runs):
            by_run.setdefault(ri, []).append((c, tuple(levels)))
        jobs = []
        for ri, gs in sorted(by_run.items()):
            run = runs[ri]
            num_to_rel = dict(run.frames)
            # segments: maximal unions of overlapping/adjacent windows. Windows are visited by their FIRST frame
            # (not by centre: a later centre with a wider window can start before the previous segment ends,
            # which would put frames into two segments and decode them twice)
            gs.sort(key=lambda g: (g[0] - (max(g[1]) - 1) // 2, g[0]))
            segs: list[list] = []  # [members, first frame, last frame]
            for c, levels in gs:
                h = (max(levels) - 1) // 2
                if segs and c - h <= segs[-1][2] + 1:
                    seg = segs[-1]
                    seg[0].append((c, levels))
                    seg[1], seg[2] = min(seg[1], c - h), max(seg[2], c + h)
                else:
                    segs.append([[(c, levels)], c - h, c + h])
            for members, lo, hi in segs:
                payload = {"split": run.split, "sequence": run.sequence, "run": run.index,
                           "frames": [[k, num_to_rel[k]] for k in range(lo, hi + 1)],
                           "groups": [[c, list(levels)] for c, levels in sorted(members)]}
                jobs.append(Job(f"{run.sequence}/seg{lo:06d}", payload))
        return sorted(jobs, key=lambda j: j.key)

    def job_keys(self, job: Job) -> list[str]:
        seq = job.payload["sequence"]
        return sorted(sample_key(seq, c, n) for c, levels in job.payload["groups"] for n in levels)

    def output_relpath(self, key: str, name: str, suffix: str) -> str:
        if name == "gt":  # the sharp centre frame, shared by every level of its group
            return f"gt/{key.rsplit('_n', 1)[0]}{suffix}"
        return f"{name}/{key}{suffix}"

    # -- produce ------------------------------------------------------------------------------------------
    def _plan_seed(self, root_seed: int) -> dict:
        from benchkit.seeding import sample_entropy

        return {"root": int(root_seed), "entropy": sample_entropy(int(root_seed), f"gopro-plan/{self.config.split}")}

    def produce(self, job: Job, root_seed: int):
        """Yield one Sample per (centre, n) of the segment, decoding each frame once (see module doc)."""
        import numpy as np

        cfg = self.config
        p = job.payload
        seq, frames = p["sequence"], p["frames"]
        expect = p.get("expect_sha256", {})
        first = frames[0][0]
        pending: dict[int, list] = {}  # emission position -> [(centre position, levels)]
        for c, levels in p["groups"]:
            ci = c - first
            pending.setdefault(ci + (max(levels) - 1) // 2, []).append((ci, sorted(levels)))
        seed_info = self._plan_seed(root_seed)
        prefix = raw = lin = S = shape = None
        sources, bad = [], {}  # bad: position -> BadInputError
        ring = 2 * max((max(levels) - 1) // 2 for _, levels in p["groups"]) + 2  # 16 for n <= 15
        blobs = [b""] * ring  # encoded bytes of the ring frames (the sharp target is copied verbatim)
        for i, (num, rel) in enumerate(frames):
            path = self.source / rel
            img, digest = None, ""
            try:
                try:
                    data = path.read_bytes()
                except OSError as e:
                    raise BadInputError(path, f"cannot read frame ({e.strerror})", "check the file") from e
                digest = hashlib.sha256(data).hexdigest()
                if rel in expect and expect[rel] != digest:
                    raise BenchkitError(f"{path}: frame changed since the build (sha256 {digest[:12]} != "
                                        f"recorded {expect[rel][:12]})")
                img = decode_frame(data, path)
                if shape is None:  # all ring entries start at zero (earlier positions, if any, were bad)
                    shape = img.shape
                    prefix = np.zeros((ring,) + shape, np.uint32)
                    lin = np.empty(shape, np.int32)
                    S = np.empty(shape, np.uint32)
                elif img.shape != shape:
                    raise BadInputError(path, f"frame is {img.shape[1]}x{img.shape[0]}, the run is "
                                        f"{shape[1]}x{shape[0]}", "re-extract this frame")
            except BadInputError as e:
                img, bad[i] = None, e
            sources.append({"path": rel, "sha256": digest})
            if img is None:
                if prefix is not None:  # keep the prefix chain going (windows over this frame fail anyway)
                    prefix[(i + 1) % ring] = prefix[i % ring]
            else:
                np.add(prefix[i % ring], linearise(img, cfg.averaging, cfg.gamma, out=lin),
                       out=prefix[(i + 1) % ring])
                blobs[i % ring] = data
                if not is_plain_rgb8_png(data):  # the target must be re-encoded from pixels
                    if raw is None:
                        raw = np.zeros((ring,) + shape, np.uint8)
                    raw[i % ring] = img
            for ci, levels in pending.pop(i, []):
                c = first + ci
                for n in levels:
                    key = sample_key(seq, c, n)
                    h = (n - 1) // 2
                    hit = [j for j in range(ci - h, ci + h + 1) if j in bad]
                    if hit:
                        src = sources[hit[0]]["path"]
                        yield SampleFailure(key, str(self.source / src), f"needs unusable frame {src}: "
                                            f"{bad[hit[0]].problem}", bad[hit[0]].fix or "re-extract that frame")
                        continue
                    np.subtract(prefix[(ci + h + 1) % ring], prefix[(ci - h) % ring], out=S)
                    lq = encode_window(S, n, cfg.averaging, cfg.gamma)
                    fields = {
                        "seed": seed_info,
                        "sources": sources[ci - h: ci + h + 1],
                        "params": {"split": p["split"], "sequence": seq, "run": p["run"], "centre_frame": c,
                                   "n": n, "t": t_of_n(n), "fps": FPS, "averaging": cfg.averaging,
                                   "gamma": cfg.gamma if cfg.averaging == "gamma" else None},
                        "group": {"id": f"{seq}/{c:06d}", "levels": levels},
                        "size": [int(shape[0]), int(shape[1])],
                    }
                    blob = blobs[ci % ring]
                    yield Sample(key, fields, {"gt": Encoded(".png", blob) if is_plain_rgb8_png(blob)
                                               else png(raw[ci % ring]),
                                               "lq": png_later(lq)})

    # -- replay -------------------------------------------------------------------------------------------
    def job_for(self, record: dict) -> Job:
        prm = record["params"]
        c, n = prm["centre_frame"], prm["n"]
        h = (n - 1) // 2
        srcs = record["sources"]
        frames = [[c - h + i, s["path"]] for i, s in enumerate(srcs)]
        payload = {"split": prm["split"], "sequence": prm["sequence"], "run": prm["run"], "frames": frames,
                   "groups": [[c, [n]]], "expect_sha256": {s["path"]: s["sha256"] for s in srcs}}
        return Job(record["key"], payload)

    def produce_replay(self, job: Job, record: dict, root_seed: int):
        """Re-average the recorded source frames (sha256-verified) with the recorded n."""
        for item in self.produce(job, root_seed):
            if item.key == record["key"]:
                if isinstance(item, SampleFailure):
                    raise BenchkitError(f"{item.key}: {item.problem}")
                return item.fields, item.outputs
        raise BenchkitError(f"cannot replay {record['key']}")

    def card_counts(self) -> dict:
        return dict(self._info.get("card", {}))


class GoProEnlargedBuilder(_FrameAveragingBuilder):
    name = "gopro-enlarged"
    version = "1"
    Config = EnlargedConfig
    description = ("Enlarged GoPro (FideDiff Sec. 3.4, Table 1): blurry images averaged from n in {5,...,15} "
                   "consecutive 240 fps sharp frames of GOPRO_Large_all, grouped by centre frame into backward "
                   "trajectories of >= 3 blur levels; t = (n - 1) * 20 per sample.")

    def plan_counts(self, runs) -> tuple[dict, float, int]:
        """(per-n totals, scale used, eligible centres for the largest level)."""
        cfg = self.config
        plan = {int(k): int(v) for k, v in cfg.plan.items()}
        for n, c in plan.items():
            if n < 3 or n > MAX_N or n % 2 == 0 or c < 0:
                raise ConfigError(f"plan: n must be odd in 3..{MAX_N} with a count >= 0, got {n}: {c}")
        if cfg.min_levels < 1 or not 0 < cfg.centre_fraction <= 1:
            raise ConfigError("min_levels must be >= 1 and centre_fraction in (0, 1]")
        if not any(c > 0 for c in plan.values()):
            raise ConfigError(f"plan: no n has a count > 0 (got {plan}); give at least one, e.g. plan: {{11: 100}}")
        lmax = max(n for n, c in plan.items() if c > 0)
        e_max = sum(max(0, len(r) - (lmax - 1)) for r in runs)
        total = sum(plan.values())
        if cfg.scale is None:
            g_plan = total // cfg.min_levels
            g_cap = int(cfg.centre_fraction * e_max)
            scale = min(1.0, g_cap / g_plan) if g_plan else 1.0
        else:
            scale = float(cfg.scale)
        counts = plan if scale == 1.0 else largest_remainder(plan, scale)
        return counts, scale, e_max

    def groups(self, runs):
        import numpy as np

        from benchkit.seeding import rng_for

        cfg = self.config
        counts, scale, e_max = self.plan_counts(runs)
        total = sum(counts.values())
        n_groups = total // cfg.min_levels
        info = {"card": {}, "plan_problems": []}
        self._info = info
        if n_groups == 0:
            info["plan_problems"].append({"key": "source/plan", "path": str(self.source),
                                          "error": f"source too small: plan scaled to {total} pairs",
                                          "fix": "use a larger source or set scale"})
            return []
        level_sets = deal_levels(counts, n_groups)
        rng = rng_for(self.root_seed, f"gopro-plan/{cfg.split}")
        level_sets = [level_sets[i] for i in rng.permutation(n_groups)]
        order = sorted(range(n_groups), key=lambda g: -max(level_sets[g]))  # stable: widest windows first
        used: set = set()
        out = []
        i = 0
        while i < len(order):
            lmax = max(level_sets[order[i]])
            batch = [g for g in order[i:] if max(level_sets[g]) == lmax]
            h = (lmax - 1) // 2
            cands = [(ri, num) for ri, r in enumerate(runs) for num, _ in r.frames[h: len(r) - h]
                     if (ri, num) not in used]
            if len(batch) > len(cands):
                raise ConfigError(f"plan needs {len(batch)} centres with a {lmax}-frame window but the source has "
                                  f"only {len(cands)} free ones; lower scale or use a larger source")
            pick = rng.choice(len(cands), size=len(batch), replace=False)
            for g, k in zip(batch, pick.tolist()):
                ri, num = cands[k]
                used.add((ri, num))
                out.append((ri, num, level_sets[g]))
            i += len(batch)
        per_n = {n: sum(n in ls for ls in level_sets) for n in sorted(counts)}
        sizes = np.bincount([len(ls) for ls in level_sets])
        info["card"] = {
            "plan (n: pairs)": ", ".join(f"{n}: {c}" for n, c in per_n.items()) + f" = {total}",
            "t = (n-1)*20": ", ".join(f"n={n}: t={t_of_n(n)}" for n in per_n),
            "plan scale": f"{scale:.6g} ({'auto' if cfg.scale is None else 'configured'}; "
                          f"{e_max} centre frames fit a {max(counts)}-frame window)",
            "trajectory groups": f"{n_groups} centre frames, levels per group: "
                                 + ", ".join(f"{k}: {int(v)}" for k, v in enumerate(sizes) if v),
            "runs used": len({ri for ri, _, _ in out}),
        }
        return out


class GoProTestBuilder(_FrameAveragingBuilder):
    name = "gopro-test"
    version = "1"
    Config = SplitTestConfig
    description = ("GoPro-style test pairs from GOPRO_Large_all: blurry = average of n = 11 consecutive 240 fps "
                   "frames (t = 200, the FideDiff GoPro test protocol), sharp = middle frame, non-overlapping "
                   "windows.")

    def groups(self, runs):
        cfg = self.config
        n = cfg.n
        if n < 1 or n > MAX_N or n % 2 == 0:
            raise ConfigError(f"n must be odd in 1..{MAX_N}, got {n}")
        stride = n if cfg.stride is None else cfg.stride  # 0 is an error, not "default"
        if stride < 1:
            raise ConfigError("stride must be >= 1")
        h = (n - 1) // 2
        out = []
        for ri, r in enumerate(runs):
            for k in range(h, len(r) - h, stride):
                out.append((ri, r.frames[k][0], (n,)))
        self._info = {"card": {"pairs": f"{len(out)} (n = {n}, t = {t_of_n(n)}, stride {stride})",
                               "runs used": len({ri for ri, _, _ in out})}}
        return out
