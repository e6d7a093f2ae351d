"""``benchkit bench resume``: how a resume of a finished build grows with the dataset (issue 15).

For each size N (default 1,000 and, with ``BENCHKIT_BENCH_RESUME_10K=1``, also 10,000; ``--n`` sets one size,
``--quick`` 200), tiny 64x64 PNG sources are degraded with ``realesrgan_x1`` (``--workers 1``) into a fresh
folder, then the same command is run again on the finished folder (a resume: nothing to produce; best of
three). Both are timed in this process, wall clock and CPU (user + sys of this process; the single-worker path runs no child
processes). A resume stats every recorded output and source file and reads none of them (see
``benchkit.runner``); its cost should grow no faster than the manifest and stay a small fraction of the build.
Figures: build and resume seconds (wall, CPU), resume/build ratios (wall and CPU), resume microseconds per sample, and
manifest bytes, per size; the last line of ``benchkit bench resume`` is the JSON object.
"""

from __future__ import annotations


def machine() -> dict:
    """The machine description every bench's JSON line carries (:func:`benchkit.bench._clock.machine`)."""
    from ._clock import machine as m

    return m()


def _timed(fn):
    import os
    import time

    t0, c0 = time.perf_counter(), os.times()
    res = fn()
    c1 = os.times()
    return res, time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)


def write_tiny_sources(src, n: int, rng) -> None:
    """``n`` random 64x64 RGB PNGs ``000000.png``, ... into the existing folder ``src`` (``rng``: a numpy
    Generator; also the sources of ``bench evaluate-scale``)."""
    import numpy as np

    from benchkit.images import encode_png

    for i in range(n):
        (src / f"{i:06d}.png").write_bytes(encode_png((rng.random((64, 64, 3)) * 255).astype(np.uint8)))


def run(args) -> dict:
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import numpy as np

    from benchkit import manifest as mf
    from benchkit.config import load_pipeline
    from benchkit.degrade import DegradeProducer
    from benchkit.runner import run_producer

    if getattr(args, "n", None):
        sizes = [int(args.n)]
    elif getattr(args, "quick", False):
        sizes = [200]
    else:
        sizes = [1000] + ([10000] if os.environ.get("BENCHKIT_BENCH_RESUME_10K") == "1" else [])
    name, gen, _ = load_pipeline("realesrgan_x1")
    tmp = Path(tempfile.mkdtemp(prefix="benchkit-bench-resume-"))
    rows = {}
    try:
        rng = np.random.default_rng(0)
        for n in sizes:
            src = tmp / f"src{n}"
            src.mkdir()
            write_tiny_sources(src, n, rng)  # tiny: the build is cheap, so the resume's share is not flattered
            out = tmp / f"out{n}"
            def once(src=src, out=out):
                return run_producer(DegradeProducer(name, gen, src), out, seed=0, progress=False)

            b, bw, bc = _timed(once)
            if b.produced != n:
                raise RuntimeError(f"bench resume: the build produced {b.produced} of {n} samples: {b.report()}")
            r, rw, rc = min((_timed(once) for _ in range(3)), key=lambda t: t[1])  # best of 3 resumes
            row = {"samples": n, "build_wall_s": round(bw, 4), "build_cpu_s": round(bc, 4),
                   "resume_wall_s": round(rw, 4), "resume_cpu_s": round(rc, 4),
                   "resume_over_build": round(rw / bw, 5),
                   "resume_over_build_cpu": round(rc / bc, 5) if bc > 0 else None,
                   "resume_us_per_sample": round(1e6 * rw / n, 1),
                   "manifest_bytes": (out / mf.MANIFEST).stat().st_size,
                   "produced_on_build": b.produced, "produced_on_resume": r.produced}
            rows[str(n)] = row
            print(f"{n} samples: build {bw:.2f}s wall / {bc:.2f}s CPU; resume {rw:.3f}s wall / {rc:.3f}s CPU "
                  f"({100 * rw / bw:.2f}% of the build's wall time, {row['resume_us_per_sample']} us/sample); manifest "
                  f"{row['manifest_bytes'] / 1e6:.2f} MB")
            shutil.rmtree(src)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"bench": "resume", "pipeline": name, "sizes": rows, "machine": machine()}
    if len(rows) > 1:
        a, z = rows[str(sizes[0])], rows[str(sizes[-1])]
        result["growth"] = {"samples": sizes[-1] / sizes[0],
                            "resume_wall": round(z["resume_wall_s"] / a["resume_wall_s"], 3),
                            "manifest_bytes": round(z["manifest_bytes"] / a["manifest_bytes"], 3)}
        print(f"x{result['growth']['samples']:.0f} samples: resume x{result['growth']['resume_wall']}, manifest "
              f"x{result['growth']['manifest_bytes']}")
    return result
