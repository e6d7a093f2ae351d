"""``benchkit bench gopro``: gopro-enlarged build throughput vs the pure PNG decode+encode floor.

A GOPRO_Large_all-shaped source is rendered into a temporary folder (default 4
sequences x 120 frames of 256x256; ``--quick``: 2 x 60; ``--n`` = frames per
sequence). In one process, one worker (whose I/O thread encodes and writes the blurry outputs
while the next window is averaged; the floor is single-threaded), best of ``reps`` runs each:

- build: ``gopro-enlarged`` into a fresh folder (auto plan, every output written);
- floor: decode exactly the frames the build decoded (once each) and PNG-encode exactly
  the images the build encoded (its blurry outputs, read back untimed; sharp targets that
  the build copies verbatim are not encoded by either), same codec settings, no averaging,
  hashing, file writes or manifest;
- secondary floor: decode the frames + encode one SHARP frame per file the build wrote.

``ratio = floor seconds / build seconds`` (target >= 0.70). Peak memory of the build
is measured with tracemalloc (Python + numpy allocations) and ru_maxrss.
"""

from __future__ import annotations


def _frames_decoded(builder) -> list:
    builder.root_seed = 0
    return sorted({rel for j in builder.jobs() for _, rel in j.payload["frames"]})


def run(args) -> dict:
    import resource
    import shutil
    import tempfile
    import time
    import tracemalloc
    from pathlib import Path

    import cv2
    import numpy as np

    from benchkit import manifest as mf
    from benchkit.builders.base import build
    from benchkit.builders.gopro import GoProEnlargedBuilder
    from benchkit.builders.gopro_source import write_tree
    from benchkit.images import png_params

    from ._clock import cpu_s

    quick = bool(getattr(args, "quick", False))
    n_seq, size = (2, 256) if quick else (4, 256)
    n_frames = getattr(args, "n", None) or (60 if quick else 120)
    reps = 1 if quick else 2
    tmp = Path(tempfile.mkdtemp(prefix="benchkit-bench-gopro-"))
    try:
        seqs = tuple(("train", f"BENCH{i:03d}_00_00", ("astronaut", "coffee", "chelsea")[i % 3],
                      ("coffee", "chelsea", "astronaut")[i % 3], n_frames, 1.5 + 0.3 * i, 100 + i)
                     for i in range(n_seq))
        t0 = time.perf_counter()
        src = write_tree(tmp / "src", seqs, size)
        print(f"source: {n_seq} sequences x {n_frames} frames of {size}x{size} rendered in "
              f"{time.perf_counter() - t0:.1f}s")
        builder = GoProEnlargedBuilder(source=src)
        frames = _frames_decoded(builder)

        tracemalloc.start()  # untimed run: peak memory (and warms the codec/LUT caches)
        summary = build(GoProEnlargedBuilder(source=src), tmp / "mem", seed=0, workers=1, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        t_build, c_build = [], []
        for r in range(reps):
            out = tmp / f"out{r}"
            c0, t0 = cpu_s(), time.perf_counter()
            summary = build(GoProEnlargedBuilder(source=src), out, seed=0, workers=1, progress=False)
            t_build.append(time.perf_counter() - t0)
            c_build.append(cpu_s() - c0)
        n_pairs = summary.total
        recs = mf.read_manifest(out)
        src_sha = {x["sha256"] for r in recs.values() for x in r["sources"]}
        gts = {r["outputs"]["gt"]["path"]: r["outputs"]["gt"]["sha256"] for r in recs.values()}
        encoded = [r["outputs"]["lq"]["path"] for r in recs.values()]
        encoded += [p for p, h in gts.items() if h not in src_sha]  # gt re-encoded (not a verbatim copy)
        outputs = [cv2.imread(str(out / p), cv2.IMREAD_COLOR) for p in sorted(encoded)]
        n_written = len(recs) + len(gts)

        def decode_all():
            for rel in frames:
                cv2.imdecode(np.frombuffer((src / rel).read_bytes(), np.uint8), cv2.IMREAD_COLOR)

        floor_cpu = []

        def floor_outputs():  # decode the frames once + encode exactly the images the build encoded
            c0, t0 = cpu_s(), time.perf_counter()
            decode_all()
            for img in outputs:
                cv2.imencode(".png", img, png_params())
            floor_cpu.append(cpu_s() - c0)
            return time.perf_counter() - t0

        def floor_frames():  # decode the frames once + re-encode sharp frames, one per file written
            t0 = time.perf_counter()
            ring = []
            for rel in frames:
                ring.append(cv2.imdecode(np.frombuffer((src / rel).read_bytes(), np.uint8), cv2.IMREAD_COLOR))
                ring = ring[-16:]
            for k in range(n_written):
                cv2.imencode(".png", ring[k % len(ring)], png_params())
            return time.perf_counter() - t0

        tb = min(t_build)
        tf = min(floor_outputs() for _ in range(reps))
        tf2 = min(floor_frames() for _ in range(reps))
        res = {
            "frames": len(frames), "frame_size": f"{size}x{size}", "pairs": n_pairs, "files_written": n_written,
            "pngs_encoded": len(outputs), "gt_copied_verbatim": n_written - n_pairs - (len(outputs) - n_pairs),
            "build_s": round(tb, 3), "build_pairs_per_s": round(n_pairs / tb, 1),
            "build_frames_decoded_per_s": round(len(frames) / tb, 1),
            "floor_s": round(tf, 3), "floor_frames_per_s": round(len(frames) / tf, 1),
            "floor_pairs_per_s": round(n_pairs / tf, 1),
            "ratio_build_vs_floor": round(tf / tb, 3), "target_ratio": 0.70,
            "build_cpu_s": round(min(c_build), 3), "floor_cpu_s": round(min(floor_cpu), 3),
            "cpu_ratio_build_vs_floor": round(min(floor_cpu) / min(c_build), 3),
            "floor_sharp_s": round(tf2, 3), "ratio_build_vs_floor_sharp": round(tf2 / tb, 3),
            "peak_traced_mb": round(peak / 2**20, 1),
            "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        print(f"build: {n_pairs} pairs ({n_written} files, {len(outputs)} PNG encodes, "
              f"{res['gt_copied_verbatim']} sharp frames copied verbatim) from {len(frames)} decoded frames in "
              f"{tb:.2f}s = {res['build_pairs_per_s']} pairs/s, {res['build_frames_decoded_per_s']} frames/s")
        print(f"floor (decode the same {len(frames)} frames once + encode the same {len(outputs)} output images): "
              f"{tf:.2f}s = {res['floor_frames_per_s']} frames/s, {res['floor_pairs_per_s']} pairs/s")
        print(f"ratio build/floor throughput: {res['ratio_build_vs_floor']:.2f} (target >= 0.70); CPU time "
              f"build {res['build_cpu_s']:.2f}s, floor {res['floor_cpu_s']:.2f}s: {res['cpu_ratio_build_vs_floor']:.2f}")
        print(f"secondary floor (decode frames + encode {n_written} SHARP frames, no copies): {tf2:.2f}s; "
              f"ratio {res['ratio_build_vs_floor_sharp']:.2f}")
        print(f"peak traced memory (tracemalloc, numpy included) {res['peak_traced_mb']} MB, "
              f"ru_maxrss {res['ru_maxrss_mb']} MB")
        res["bench"] = "gopro"
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
