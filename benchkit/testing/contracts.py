"""Contract suites: what every registered generator, method, metric and builder must satisfy.

Each ``check_*`` function raises ``AssertionError`` with a message naming the entry and the broken
rule; ``tests/test_contracts.py`` runs them over every entry of every registry table, and shows that a
deliberately broken entry fails. Tolerances come from :mod:`benchkit.testing.tolerances`.
"""

from __future__ import annotations

import inspect
import json
import random

from benchkit.testing.tolerances import TOLERANCES


def _img(seed: int, h: int, w: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1)], -1)
    return np.clip(0.7 * base + 0.3 * rng.random((h, w, 3), dtype=np.float32), 0, 1).astype(np.float32)


class _GlobalRNGGuard:
    """Fails when code inside the block touched Python's, numpy's or torch's global RNG state."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        import sys

        import numpy as np

        self.py = random.getstate()
        self.np = np.random.get_state()[1].copy()
        torch = sys.modules.get("torch")
        self.torch = torch.random.get_rng_state().clone() if torch is not None else None
        return self

    def __exit__(self, *exc):
        import sys

        import numpy as np

        if exc[0] is not None:
            return False
        assert random.getstate() == self.py, f"{self.what} changed Python's global RNG state"
        assert (np.random.get_state()[1] == self.np).all(), f"{self.what} drew from numpy's global RNG"
        torch = sys.modules.get("torch")
        if torch is not None and self.torch is not None:
            assert torch.equal(torch.random.get_rng_state(), self.torch), f"{self.what} drew from torch's global RNG"
        return False


# ------------------------------------------------------------------------------------- generators


def _call(fn, *args, ctx=None):
    """Call ``sample``/``apply`` with the context when the signature takes one."""
    params = inspect.signature(fn).parameters
    if "ctx" in params or len(params) > len(args):
        return fn(*args, ctx)
    return fn(*args)


def check_generator(name: str, config=None, size: int = 160) -> None:
    """Params JSON round trip; apply draws no randomness and is pure (twice = identical bytes); the global
    RNGs are untouched; outputs are named arrays; a batched path (``apply_batch``) agrees with ``apply``."""
    import numpy as np

    from benchkit.generators.base import SampleContext
    from benchkit.params import Params
    from benchkit.registry import resolve
    from benchkit.seeding import rng_for

    cls = resolve("generator", name)
    gen = cls(config) if config is not None else cls()
    h = w = max(size, gen.min_input_size())
    img = _img(3, h, w)
    aux = {p: _aux_for(p, h, w) for p in getattr(gen, "aux_passes", ())}
    try:
        ctx = SampleContext("contract/key", h, w, aux=aux)
    except TypeError:
        ctx = SampleContext("contract/key", h, w)
    with _GlobalRNGGuard(f"generator {name}: sample"):
        p1 = gen.sample(rng_for(0, "contract/key", "contract"), ctx)
    p2 = gen.sample(rng_for(0, "contract/key", "contract"), ctx)
    assert isinstance(p1, Params), f"generator {name}: sample() must return a Params, got {type(p1).__name__}"
    assert p1 == p2, f"generator {name}: sample() with the same seeded rng gave different Params"
    text = p1.dumps()
    back = Params.loads(text)
    assert back == p1 and back.dumps() == text, f"generator {name}: Params JSON round trip is not exact"
    json.loads(text)
    with _GlobalRNGGuard(f"generator {name}: apply"):
        out1 = _call(gen.apply, img, p1, ctx=ctx)
    out2 = _call(gen.apply, img.copy(), back, ctx=ctx)
    assert isinstance(out1, dict) and out1, f"generator {name}: apply() must return a non-empty dict of outputs"
    assert set(out1) == set(out2), f"generator {name}: apply() output names vary"
    for k in out1:
        a, b = np.asarray(out1[k]), np.asarray(out2[k])
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), \
            f"generator {name}: output {k!r} differs between two applies of the same Params (hidden randomness)"
        assert np.isfinite(a.astype(np.float64)).all(), f"generator {name}: output {k!r} has NaN/inf"
    if hasattr(gen, "apply_batch"):
        check_generator_batch(gen, name, img, p1, out1)


def _aux_for(pass_name: str, h: int, w: int):
    import numpy as np

    return np.zeros((h, w), np.uint8)


def check_generator_batch(gen, name, img, params, single) -> None:
    import numpy as np

    import torch

    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    res = gen.apply_batch(x, [params])  # torch batch [B, 3, H, W] in [0, 1] (8-bit levels / 255)
    lq = res[0] if isinstance(res, tuple) else res
    lq = np.clip(np.round(lq[0].permute(1, 2, 0).cpu().numpy().astype(np.float64) * 255), 0, 255)
    ref = np.asarray(single["lq"])
    d = np.abs(lq.astype(np.float64) - ref.astype(np.float64))
    assert lq.shape == ref.shape, f"generator {name}: apply_batch lq shape {lq.shape} != apply {ref.shape}"
    assert d.mean() <= TOLERANCES["generator_batch_mean_levels"], \
        f"generator {name}: batch vs single mean difference {d.mean():.3f} levels"
    assert (d > 8).mean() <= TOLERANCES["generator_batch_far_share"], \
        f"generator {name}: batch vs single: {(d > 8).mean():.3%} of values differ by more than 8 levels"


# ------------------------------------------------------------------------------------- methods


def check_method(name: str, tmp_dir) -> str:
    """Returns 'ran' or 'unavailable: <reason>'. Unavailable methods must say why and refuse to restore
    (never a fake output); available ones: count, size = scale x input, float32, range, finite,
    determinism under a seed, load/unload, a stable tag, JSON-serialisable info."""
    import numpy as np

    from benchkit.errors import UnavailableError
    from benchkit.registry import resolve

    cls = resolve("method", name)
    m = cls()
    m.setup(weights_dir=tmp_dir)
    assert m.name == name, f"method {name}: class name attribute is {m.name!r}"
    assert m.scales and all(isinstance(s, int) and s >= 1 for s in m.scales), f"method {name}: bad scales {m.scales}"
    assert m.batch_size >= 1, f"method {name}: batch_size must be >= 1"
    json.dumps(m.info())
    twin = cls()
    twin.setup(weights_dir=tmp_dir)
    assert m.tag() == twin.tag(), f"method {name}: tag is not stable across instances"
    ok, why = m.availability()
    if not ok:
        assert isinstance(why, str) and len(why) > 10, f"method {name}: unavailable without a reason"
        try:
            m.restore([_img(0, 16, 16)], [{"key": "k", "seed": 0}], m.scales[0])
        except UnavailableError:
            return f"unavailable: {why}"
        raise AssertionError(f"method {name}: unavailable ({why}) but restore() did not raise UnavailableError")
    m.load("cpu", "float32")
    assert m.loaded, f"method {name}: load() did not mark the method loaded"
    try:
        for scale in m.scales:
            xs = [_img(1, 20, 24), _img(2, 16, 16)]
            ctxs = [{"key": f"k{i}", "record": {"key": f"k{i}", "outputs": {}}, "dataset_dir": str(tmp_dir),
                     "aux": {}, "meta": {}, "psf": None, "psf_path": None, "seed": 1234 + i,
                     "generator": (lambda s=1234 + i: _gen(s))} for i in range(2)]
            outs = m.restore(xs, ctxs, scale)
            again = m.restore([x.copy() for x in xs], ctxs, scale)
            assert isinstance(outs, (list, tuple)) and len(outs) == len(xs), \
                f"method {name}: {len(outs)} outputs for {len(xs)} inputs"
            for x, o, o2 in zip(xs, outs, again):
                want = (x.shape[0] * scale, x.shape[1] * scale, 3)
                assert isinstance(o, np.ndarray) and o.shape == want, \
                    f"method {name}: output shape {getattr(o, 'shape', None)} != {want} at x{scale}"
                assert o.dtype == np.float32, f"method {name}: output dtype {o.dtype}, expected float32"
                assert np.isfinite(o).all(), f"method {name}: non-finite output"
                tol = TOLERANCES["method_range"]
                assert o.min() >= -tol and o.max() <= 1 + tol, f"method {name}: output outside [0, 1]"
                assert np.abs(o - o2).max() <= TOLERANCES["method_determinism"], \
                    f"method {name}: two runs with the same seed differ"
    finally:
        m.unload()
    assert not m.loaded, f"method {name}: unload() left it loaded"
    return "ran"


def _gen(seed):
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


# ------------------------------------------------------------------------------------- metrics


def check_metric(name: str, weights_root) -> str:
    """Direction metadata; unavailable metrics say what to place; available per-image metrics: batch =
    single, finite, FR metrics are NA without a target; dataset-level metrics aggregate their states."""
    import math

    from benchkit.metrics import get_metric
    from benchkit.metrics.base import NA, ScoreRequest
    from benchkit.metrics.catalog import KINDS

    m = get_metric(name, weights_root=weights_root)
    info = m.info
    assert info.kind in KINDS, f"metric {name}: kind {info.kind!r}"
    assert isinstance(info.higher_is_better, bool), f"metric {name}: higher_is_better must be a bool"
    assert info.version, f"metric {name}: no version"
    ok, why = m.availability()
    if not ok:
        assert isinstance(why, str) and len(why) > 10, f"metric {name}: unavailable without saying why"
        return f"unavailable: {why}"
    a, b, c = _img(1, 64, 64), _img(2, 64, 64), _img(3, 64, 64)
    if info.kind == "dataset":
        reqs = [ScoreRequest(f"k{i}", output_src=x, target_src=y) for i, (x, y) in enumerate([(a, b), (b, c)])]
        assert m.applicable(True) and (m.reference_role == "input" or not m.applicable(False)), \
            f"metric {name}: applicability rule broken"
        return "dataset-level (states checked in its own tests)"
    refs = [b, c] if info.kind == "FR" else None
    batch = m.score_batch([a, c], refs)
    single = [m.score(a, b if refs else None), m.score(c, c if refs else None)]
    for v1, v2 in zip(batch, single):
        assert math.isfinite(v1) or info.name.startswith("psnr"), f"metric {name}: non-finite score {v1}"
        if math.isfinite(v1):
            assert abs(v1 - v2) <= TOLERANCES["metric_batch_vs_single_rel"] * max(1.0, abs(v2)), \
                f"metric {name}: batch {v1} != single {v2}"
    reqs = [ScoreRequest("k", output_src=a, target_src=None)]
    got = m.score_requests(reqs)
    if info.kind == "FR":
        assert got == [NA], f"metric {name}: FR metric without a target must be NA, got {got}"
    else:
        assert isinstance(got[0], float) and abs(got[0] - m.score(a)) <= \
            TOLERANCES["metric_batch_vs_single_rel"] * max(1.0, abs(got[0])), f"metric {name}: request != score"
    return "ran"


# ------------------------------------------------------------------------------------- builders


BUILDER_SMOKE = {  # tiny settings per builder on the embedded source
    "blur-synth": ["patch_size=128", "stride=128"],
    "gopro-enlarged": [],
    "gopro-test": [],
    "inscene": ["iqa_filter=false", "min_short_side=400", "crop_size=256"],  # embedded photos are < 1000 px
    "hmb-synth": ["size=128", "segmenter=mediapipe"],
    "mpii-test": [],  # released-folder mode on the embedded photos; the rebuild has its own .mat tests
}


def check_builder(name: str, tmp_dir, limit: int = 2) -> None:
    """A tiny build completes; a re-run resumes without producing anything; workers 1 and 2 write the same
    manifest and bytes."""
    from pathlib import Path

    from benchkit.builders.base import build
    from benchkit.datasets.build import make_builder
    from benchkit.fsio import sha256_file
    from benchkit.manifest import read_jsonl

    tmp_dir = Path(tmp_dir)
    sets = BUILDER_SMOKE.get(name, [])
    s1 = build(make_builder(name, "embedded", sets), tmp_dir / "w1", seed=3, workers=1, limit=limit, progress=False)
    assert s1.failed == 0 and s1.produced >= 1, f"builder {name}: tiny build produced {s1.produced}, failed {s1.failed}"
    again = build(make_builder(name, "embedded", sets), tmp_dir / "w1", seed=3, workers=1, limit=limit,
                  progress=False)
    assert again.produced == 0, f"builder {name}: an unchanged re-run produced {again.produced} samples"
    build(make_builder(name, "embedded", sets), tmp_dir / "w2", seed=3, workers=2, limit=limit, progress=False)

    def digest(d):
        recs = sorted(read_jsonl(d / "manifest.jsonl"), key=lambda r: r["key"])
        files = {p.relative_to(d).as_posix(): sha256_file(p) for p in sorted(d.rglob("*.png"))}
        return [{k: r.get(k) for k in ("key", "params", "outputs")} for r in recs], files

    assert digest(tmp_dir / "w1") == digest(tmp_dir / "w2"), f"builder {name}: workers 1 and 2 differ"
