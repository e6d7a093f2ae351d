"""``benchkit bench degrade``: Real-ESRGAN degradation speed on 512 x 512 RGB, CPU.

Figures (all on this machine, same run):

- ``cpu_path_img_s``: ``RealESRGANGenerator.apply`` (numpy/OpenCV) in-process, images/s.
- ``version_*``: the generator's version (new builds) against the previous one it replays, on the same
  images and params: CPU ms per image and how far the 8-bit gt / lq move (max |diff| in levels, min PSNR).
- ``torch_path_img_s``: ``apply_batch`` on CPU tensors, batches of 8 (``impl="auto"``: the CPU path per
  sample), images/s; ``torch_kernels_on_cpu_img_s``: the batched torch kernels (``impl="torch"``) on CPU.
- the issue's target: the whole ``benchkit degrade --pipeline realesrgan_x4 --workers 1`` process over
  N (default 200) PNGs (read, degrade, write lq + gt, manifest) next to the same read-degrade-write loop
  composed from BasicSR's CPU helpers (``random_mixed_kernels``, ``circular_lowpass_kernel``,
  ``cv2.filter2D``, ``random_add_gaussian_noise``, ``random_add_poisson_noise``, ``add_jpg_compression``,
  ``usm_sharp``; kernels padded to 21 as in Real-ESRGAN) in the same two-order order.
  ``speedup_vs_basicsr`` = BasicSR loop seconds (its imports excluded) / benchkit process seconds
  (interpreter start, imports and manifest included); best of the repeats.

Equal footing for the PNG files: both sides read the same PNGs and write with the same settings, those
of benchkit's ``encode_png`` default: OpenCV's default PNG params, i.e. ``cv2.imwrite`` with no params,
which is what BasicSR's own ``basicsr.utils.imwrite`` does (if ``encode_png`` pinned a zlib level, the
BasicSR loop would be given the same level).

What ``--workers 1`` means: one worker process does all the compute (sampling, USM, degradation) on its
main thread, plus one I/O thread that overlaps PNG decode/encode, hashing and file writes with that
compute (see ``benchkit.runner``); the BasicSR loop is one plain Python loop on one thread. So that the
wall-clock gain of the I/O overlap is visible as such, the CPU time (user + sys, from ``getrusage`` of the
child process) of both whole processes is reported next to the wall time (OpenCV's own thread pool runs
in both, at its default size).

BasicSR is optional (``pip install basicsr-fixed``); without it only benchkit figures are reported.
Inputs are generated deterministically from the embedded images (8 photographs x 8 flips/rotations
x brightness variants) into a temporary folder, written with ``encode_png``'s default settings.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._clock import cpu_s

SIZE = 512
#: the issue's targets: BasicSR loop / benchkit process, in CPU time (user + sys) and in wall time
TARGET_CPU_RATIO = 3.0
TARGET_WALL_RATIO = 3.0

# The reference loop, run in its own interpreter: argv = src dst png_compression ("default" = cv2.imwrite with no
# params, which is what basicsr.utils.imwrite does).
BASICSR_LOOP = r'''
import math, random, sys, time
from pathlib import Path
import cv2, numpy as np
t_imp = time.perf_counter()
from basicsr.data.degradations import (add_jpg_compression, circular_lowpass_kernel, random_add_gaussian_noise,
                                       random_add_poisson_noise, random_mixed_kernels)
from basicsr.utils.img_process_util import usm_sharp
t_imp = time.perf_counter() - t_imp
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
PNG = [] if sys.argv[3] == "default" else [cv2.IMWRITE_PNG_COMPRESSION, int(sys.argv[3])]
for sub in ("lq", "gt"):
    (dst / sub).mkdir(parents=True, exist_ok=True)
np.random.seed(0); random.seed(0)
KL = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
KP = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
SIZES = [2 * v + 1 for v in range(3, 11)]
MODES = [cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC]
def kernel(sigma):
    ks = random.choice(SIZES)
    if np.random.uniform() < 0.1:
        omega = np.random.uniform(np.pi / 3, np.pi) if ks < 13 else np.random.uniform(np.pi / 5, np.pi)
        k = circular_lowpass_kernel(omega, ks, pad_to=False)
    else:
        k = random_mixed_kernels(KL, KP, ks, sigma, sigma, [-math.pi, math.pi], [0.5, 4], [1, 2], noise_range=None)
    p = (21 - ks) // 2
    return np.pad(k, ((p, p), (p, p)))
def rs(img, h, w):
    return cv2.resize(img, (max(1, w), max(1, h)), interpolation=random.choice(MODES))
def noise(img, sig, pois):
    if np.random.uniform() < 0.5:
        return random_add_gaussian_noise(img, sigma_range=sig, clip=True, rounds=False, gray_prob=0.4)
    return random_add_poisson_noise(img, scale_range=pois, gray_prob=0.4, clip=True, rounds=False)
def jpg(img):
    return add_jpg_compression(np.clip(img, 0, 1), int(np.random.uniform(30, 95)))
paths = sorted(src.glob("*.png"))
t0 = time.perf_counter()
t_read = t_usm = t_deg = 0.0
for path in paths:
    ta = time.perf_counter()
    gt = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    tb = time.perf_counter()
    gt = usm_sharp(gt)
    tc = time.perf_counter()
    h, w = gt.shape[:2]
    k1, k2 = kernel([0.2, 3]), kernel([0.2, 1.5])
    sinc = circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), random.choice(SIZES), pad_to=21) \
        if np.random.uniform() < 0.8 else None
    out = cv2.filter2D(gt, -1, k1)
    t = random.choices(["up", "down", "keep"], [0.2, 0.7, 0.1])[0]
    s = np.random.uniform(1, 1.5) if t == "up" else np.random.uniform(0.15, 1) if t == "down" else 1
    out = rs(out, int(h * s), int(w * s))
    out = noise(out, [1, 30], [0.05, 3])
    out = jpg(out)
    if np.random.uniform() < 0.8:
        out = cv2.filter2D(out, -1, k2)
    t = random.choices(["up", "down", "keep"], [0.3, 0.4, 0.3])[0]
    s = np.random.uniform(1, 1.2) if t == "up" else np.random.uniform(0.3, 1) if t == "down" else 1
    out = rs(out, int(h / 4 * s), int(w / 4 * s))
    out = noise(out, [1, 25], [0.05, 2.5])
    if np.random.uniform() < 0.5:
        out = rs(out, h // 4, w // 4)
        if sinc is not None:
            out = cv2.filter2D(out, -1, sinc)
        out = jpg(out)
    else:
        out = jpg(out)
        out = rs(out, h // 4, w // 4)
        if sinc is not None:
            out = cv2.filter2D(out, -1, sinc)
    lq = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    td = time.perf_counter()
    t_read += tb - ta
    t_usm += tc - tb
    t_deg += td - tc
    cv2.imwrite(str(dst / "lq" / path.name), lq, PNG)
    cv2.imwrite(str(dst / "gt" / path.name), np.clip(np.round(gt * 255.0), 0, 255).astype(np.uint8), PNG)
print(f"BASICSR_LOOP {len(paths)} {time.perf_counter() - t0:.6f} {t_imp:.6f} {t_read:.6f} {t_usm:.6f} {t_deg:.6f}")
'''


def make_inputs(dest: Path, n: int, size: int = SIZE) -> list[Path]:
    """``n`` deterministic ``size`` x ``size`` RGB PNGs: embedded photos x 8 flips/rotations x gamma."""
    import numpy as np

    from benchkit.embedded import materialize_images
    from benchkit.images import read_image, write_png

    bases = [read_image(p) for p in sorted(materialize_images(size=size).glob("*.png"))]
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = bases[i % len(bases)]
        t = (i // len(bases)) % 8
        img = np.rot90(img, t % 4)
        if t >= 4:
            img = img[:, ::-1]
        variant = i // (8 * len(bases))
        if variant:
            img = np.power(img, 1.0 + 0.15 * variant)
        p = dest / f"img{i:04d}.png"
        write_png(p, np.ascontiguousarray(img))
        paths.append(p)
    return paths


def _throughput(args, quick: bool) -> dict:
    import numpy as np
    import torch

    from benchkit.config import load_pipeline
    from benchkit.embedded import materialize_images
    from benchkit.generators.base import SampleContext
    from benchkit.images import read_image
    from benchkit.seeding import rng_for

    _name, gen, _ = load_pipeline("realesrgan_x4")
    bases = [read_image(p) for p in sorted(materialize_images(size=SIZE).glob("*.png"))]
    m = 8 if quick else 32
    imgs = [bases[i % len(bases)] for i in range(m)]
    ctxs = [SampleContext(f"b{i}", SIZE, SIZE) for i in range(m)]
    params = [gen.sample(rng_for(0, f"b{i}"), ctxs[i]) for i in range(m)]
    gen.apply(imgs[0], params[0], ctxs[0])  # warm-up
    c0, t0 = cpu_s(), time.perf_counter()
    for img, p, c in zip(imgs, params, ctxs):
        gen.apply(img, p, c)
    np_s, np_cpu = time.perf_counter() - t0, cpu_s() - c0
    batch = 4 if quick else 8
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    gen.apply_batch(x[:2], params[:2])  # warm-up
    c0, t0 = cpu_s(), time.perf_counter()
    for s in range(0, m, batch):
        gen.apply_batch(x[s:s + batch], params[s:s + batch])
    torch_s, torch_cpu = time.perf_counter() - t0, cpu_s() - c0
    # the batched torch kernels themselves on this CPU (what "auto" avoids on CPU tensors), fewer images
    from benchkit.generators.realesrgan.torch_path import (
        apply_batch as torch_apply_batch,
    )

    mk = min(m, 2 * batch if not quick else batch)
    c0, t0 = cpu_s(), time.perf_counter()
    for s in range(0, mk, batch):
        torch_apply_batch(x[s:s + batch], params[s:s + batch], gen.config, impl="torch")
    kern_s, kern_cpu = time.perf_counter() - t0, cpu_s() - c0
    # where the time of one read-degrade-write goes (CPU path of the generator's version), ms per image
    from benchkit.images import decode_image, encode_png

    degrade = gen.ops.degrade

    blobs = [encode_png(img) for img in imgs]
    t0 = time.perf_counter()
    for b in blobs:
        decode_image(b)
    read_ms = 1e3 * (time.perf_counter() - t0) / m
    t0 = time.perf_counter()
    targets = [gen.target(img) for img in imgs]
    usm_ms = 1e3 * (time.perf_counter() - t0) / m
    t0 = time.perf_counter()
    lqs = [degrade(t, gen.sample(rng_for(0, f"b{i}"), SampleContext(f"b{i}", SIZE, SIZE)))
           for i, t in enumerate(targets)]
    degrade_ms = 1e3 * (time.perf_counter() - t0) / m  # sampling included, like the BasicSR loop
    outs = [gen.apply(img, p, c) for img, p, c in zip(imgs, params, ctxs)]
    t0 = time.perf_counter()
    for o in outs:
        encode_png(o["gt"])
        encode_png(o["lq"])
    png_ms = 1e3 * (time.perf_counter() - t0) / m
    del lqs
    res = _versus_previous(gen, imgs, params, ctxs, outs)
    res.update({"cpu_path_img_s": m / np_s, "torch_path_img_s": m / torch_s, "throughput_images": m,
           "cpu_path_cpu_ms_per_img": 1e3 * np_cpu / m, "torch_path_cpu_ms_per_img": 1e3 * torch_cpu / m,
           "torch_vs_cpu_path_per_image": (torch_s / m) / (np_s / m),
           "torch_vs_cpu_path_cpu_per_image": (torch_cpu / m) / (np_cpu / m),
           "torch_kernels_on_cpu_img_s": mk / kern_s, "torch_kernels_on_cpu_cpu_ms_per_img": 1e3 * kern_cpu / mk,
           "torch_batch": batch, "torch_threads": torch.get_num_threads(),
           "ms_png_decode": read_ms, "ms_usm": usm_ms, "ms_degrade": degrade_ms, "ms_png_encode_gt_lq": png_ms})
    print(f"in-process, {SIZE}x{SIZE} RGB, realesrgan_x4, {m} images:")
    print(f"  CPU path (numpy/OpenCV):     {res['cpu_path_img_s']:7.2f} img/s ({1e3 * np_s / m:.1f} ms/img wall, "
          f"{1e3 * np_cpu / m:.1f} ms/img CPU)")
    print(f"  apply_batch (CPU tensors, B={batch}; runs the CPU path): {res['torch_path_img_s']:7.2f} img/s "
          f"({1e3 * torch_s / m:.1f} ms/img wall, {1e3 * torch_cpu / m:.1f} ms/img CPU)")
    print(f"  batched torch kernels on this CPU (impl='torch', {mk} images): {mk / kern_s:7.2f} img/s "
          f"({1e3 * kern_s / mk:.1f} ms/img wall, {1e3 * kern_cpu / mk:.1f} ms/img CPU)")
    print(f"  per image: PNG decode {read_ms:.1f} ms, USM target {usm_ms:.1f} ms, two-order degradation "
          f"{degrade_ms:.1f} ms, PNG encode gt+lq {png_ms:.1f} ms")
    if "previous_version" in res:
        print(f"  generator v{res['generator_version']} against v{res['previous_version']} (same params, same "
              f"{m} images): CPU {res['version_cpu_ms_per_img']:.1f} vs {res['previous_version_cpu_ms_per_img']:.1f} "
              f"ms/img; pixels: gt max |diff| {res['version_gt_max_abs']} levels, PSNR {res['version_gt_psnr_db']:.1f} dB "
              f"(min over images); lq max |diff| {res['version_lq_max_abs']} levels, PSNR "
              f"{res['version_lq_psnr_db']:.1f} dB, mean |diff| {res['version_lq_mean_abs']:.3f} levels, "
              f"{100 * res['version_lq_frac_over_8']:.3f}% of values > 8 levels apart")
    return res


def _psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _versus_previous(gen, imgs, params, ctxs, outs) -> dict:
    """The generator's version against the previous one it still replays, on the same images and params: CPU
    time per image (apply) and how far the 8-bit outputs move (max |diff| in levels, min PSNR over images)."""
    import numpy as np

    prev = (getattr(gen, "replay_versions", ()) or (None,))[0]
    if prev is None:
        return {"generator_version": gen.version}
    old = type(gen)(gen.config, version=prev)
    c0 = cpu_s()
    olds = [old.apply(img, p, c) for img, p, c in zip(imgs, params, ctxs)]
    old_cpu = cpu_s() - c0
    c0 = cpu_s()
    for img, p, c in zip(imgs, params, ctxs):
        gen.apply(img, p, c)
    new_cpu = cpu_s() - c0
    res = {"generator_version": gen.version, "previous_version": prev,
           "version_cpu_ms_per_img": 1e3 * new_cpu / len(imgs), "previous_version_cpu_ms_per_img": 1e3 * old_cpu / len(imgs)}
    for name in ("gt", "lq"):
        diffs = [int(np.abs(n[name].astype(np.int16) - o[name].astype(np.int16)).max()) for n, o in zip(outs, olds)]
        res[f"version_{name}_max_abs"] = max(diffs)
        res[f"version_{name}_psnr_db"] = round(min(_psnr(n[name], o[name]) for n, o in zip(outs, olds)), 2)
        res[f"version_{name}_frac_changed"] = float(np.mean([np.mean(n[name] != o[name]) for n, o in zip(outs, olds)]))
        d = np.concatenate([np.abs(n[name].astype(np.int16) - o[name].astype(np.int16)).ravel() for n, o in zip(outs, olds)])
        res[f"version_{name}_mean_abs"] = float(d.mean())
        res[f"version_{name}_frac_over_8"] = float(np.mean(d > 8))
    return res


def _compute_floor(src: Path) -> float:
    """Seconds of the single-worker process's compute alone over the images in ``src``: per-sample parameter
    sampling + ``apply`` (USM target, two-order degradation, 8-bit conversion), as ``benchkit degrade`` runs
    them; reading the inputs is not timed, nothing is written."""
    from benchkit.config import load_pipeline
    from benchkit.generators.base import SampleContext
    from benchkit.images import read_image
    from benchkit.seeding import rng_for

    _name, gen, _ = load_pipeline("realesrgan_x4")
    total = 0.0
    for path in sorted(src.glob("*.png")):
        img = read_image(path)
        t0 = time.perf_counter()
        ctx = SampleContext(path.stem, *img.shape[:2])
        params = gen.sample(rng_for(0, path.stem, "params"), ctx)
        gen.apply(img, params, ctx)
        total += time.perf_counter() - t0
    return total


def _timed(cmd) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``cmd``; (completed process, wall seconds, CPU seconds user+sys of the child and its children)."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc, wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _run_benchkit(src: Path, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "benchkit", "degrade", str(src), str(out), "--pipeline", "realesrgan_x4",
           "--workers", "1", "--seed", "0", "--no-progress"]
    proc, wall, cpu = _timed(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"benchkit degrade failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu


def _run_basicsr(src: Path, out: Path, png: str) -> tuple[float, float, float, list]:
    proc, wall, cpu = _timed([sys.executable, "-c", BASICSR_LOOP, str(src), str(out), png])
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("BASICSR_LOOP")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"BasicSR loop failed ({proc.returncode}): {proc.stderr[-2000:]}")
    f = [float(v) for v in line[-1].split()[1:]]
    return f[1], wall, cpu, f


def run(args) -> dict:
    import inspect
    import shutil

    from benchkit.images import encode_png

    quick = bool(getattr(args, "quick", False))
    n = int(getattr(args, "n", None) or (16 if quick else 200))
    repeats = 1 if quick else 2
    result: dict = {"bench": "degrade", "size": SIZE, "n_images": n, "repeats": repeats}
    result.update(_throughput(args, quick))

    have_basicsr = importlib.util.find_spec("basicsr") is not None
    # the BasicSR loop writes with the PNG settings benchkit's encode_png uses by default: OpenCV's own
    # defaults (no params, what basicsr.utils.imwrite does) unless encode_png pins a compression level
    comp = inspect.signature(encode_png).parameters["compression"].default
    png = "default" if comp is None else str(int(comp))
    png_desc = "OpenCV default PNG settings" if comp is None else f"PNG compression {comp}"
    result["png_settings"] = png
    with tempfile.TemporaryDirectory(prefix="benchkit-bench-degrade-") as tmp:
        tmp = Path(tmp)
        make_inputs(tmp / "in", n)
        bk, bk_cpu, bs, bs_wall, bs_cpu, bs_parts = [], [], [], [], [], []
        for r in range(repeats):
            if have_basicsr:
                loop_s, wall, cpu, parts = _run_basicsr(tmp / "in", tmp / f"basicsr{r}", png)
                bs.append(loop_s)
                bs_parts.append(parts)
                bs_wall.append(wall)
                bs_cpu.append(cpu)
                shutil.rmtree(tmp / f"basicsr{r}", ignore_errors=True)
            wall, cpu = _run_benchkit(tmp / "in", tmp / f"bk{r}")
            bk.append(wall)
            bk_cpu.append(cpu)
            shutil.rmtree(tmp / f"bk{r}", ignore_errors=True)
        result["benchkit_compute_floor_s"] = _compute_floor(tmp / "in")
    ib = bk.index(min(bk))
    result["benchkit_process_s"] = bk[ib]
    result["benchkit_process_cpu_s"] = bk_cpu[ib]
    result["benchkit_process_img_s"] = n / bk[ib]
    print(f"benchkit compute alone (sample + apply in-process over the same images, I/O untimed): "
          f"{result['benchkit_compute_floor_s']:.2f} s")
    print(f"benchkit degrade --workers 1 process, {n} PNGs {SIZE}x{SIZE} (read, degrade, write lq+gt, manifest; "
          f"one worker process, plus one I/O thread that overlaps PNG decode/encode with compute):")
    print(f"  wall {bk[ib]:.2f} s ({n / bk[ib]:.2f} img/s), CPU user+sys {bk_cpu[ib]:.2f} s; "
          f"runs (wall/CPU): {', '.join(f'{t:.2f}/{c:.2f}' for t, c in zip(bk, bk_cpu))}")
    if have_basicsr:
        js = bs_wall.index(min(bs_wall))
        result["basicsr_loop_s"] = min(bs)
        result["basicsr_process_s"] = bs_wall[js]
        result["basicsr_process_cpu_s"] = bs_cpu[js]
        result["basicsr_loop_img_s"] = n / min(bs)
        result["speedup_vs_basicsr"] = min(bs) / bk[ib]
        result["speedup_vs_basicsr_process"] = bs_wall[js] / bk[ib]
        result["cpu_ratio_basicsr_vs_benchkit"] = min(bs_cpu) / min(bk_cpu)  # best CPU run of each side
        best = bs_parts[bs.index(min(bs))]
        nn = best[0]
        result["basicsr_ms_png_decode"] = 1e3 * best[3] / nn
        result["basicsr_ms_usm"] = 1e3 * best[4] / nn
        result["basicsr_ms_degrade"] = 1e3 * best[5] / nn
        result["speedup_degradation_only"] = result["basicsr_ms_degrade"] / result["ms_degrade"]
        result["target_cpu_ratio"], result["target_wall_ratio"] = TARGET_CPU_RATIO, TARGET_WALL_RATIO
        result["cpu_ratio_ok"] = result["cpu_ratio_basicsr_vs_benchkit"] >= TARGET_CPU_RATIO
        result["wall_ratio_ok"] = result["speedup_vs_basicsr_process"] >= TARGET_WALL_RATIO
        print(f"BasicSR CPU-helper loop, same images, {png_desc} (cv2.imwrite):")
        print(f"  loop {min(bs):.2f} s ({n / min(bs):.2f} img/s; imports excluded), whole process wall "
              f"{bs_wall[js]:.2f} s, CPU user+sys {bs_cpu[js]:.2f} s")
        print(f"  per image: PNG decode {result['basicsr_ms_png_decode']:.1f} ms, USM {result['basicsr_ms_usm']:.1f} ms, "
              f"two-order degradation {result['basicsr_ms_degrade']:.1f} ms")
        print(f"  speedup benchkit vs BasicSR, whole read-degrade-write: {result['speedup_vs_basicsr']:.2f}x "
              f"(process vs process incl. imports: {result['speedup_vs_basicsr_process']:.2f}x; target >= {TARGET_WALL_RATIO:g}x)")
        print(f"  CPU time (user+sys) BasicSR process / benchkit process: {result['cpu_ratio_basicsr_vs_benchkit']:.2f}x "
              f"(target >= {TARGET_CPU_RATIO:g}x)")
        floor = result["benchkit_compute_floor_s"]
        result["speedup_vs_basicsr_at_compute_floor"] = min(bs) / floor
        print(f"  floor: benchkit's compute alone (sample + apply, in-process, same {n} images) takes {floor:.2f} s, "
              f"so even with all I/O and start-up hidden the ratio would be {min(bs) / floor:.2f}x")
        print(f"  speedup on the two-order degradation alone: {result['speedup_degradation_only']:.2f}x")
        # the CPU budget the target leaves for compute: BasicSR process CPU / 3, less benchkit's PNG decode +
        # encode of the same files (measured in-process above); start-up is not subtracted (a generous budget)
        io_ms = result["ms_png_decode"] + result["ms_png_encode_gt_lq"]
        budget = 1e3 * bs_cpu[js] / TARGET_CPU_RATIO / n - io_ms
        result["cpu_budget_ms_per_img_for_target"] = budget
        result["benchkit_compute_ms_per_img"] = result["ms_usm"] + result["ms_degrade"]
        print(f"  CPU budget for {TARGET_CPU_RATIO:g}x: {1e3 * bs_cpu[js] / TARGET_CPU_RATIO / n:.1f} ms per image, of which "
              f"PNG decode + encode take {io_ms:.1f}: {budget:.1f} ms left for USM + degradation, which take "
              f"{result['benchkit_compute_ms_per_img']:.1f} ms")
    else:
        result["basicsr"] = "not installed"
        print("BasicSR not installed: pip install basicsr-fixed  (to measure the reference loop side by side)")
    result["cpu_count"] = os.cpu_count()
    import torch

    if torch.cuda.is_available():  # the accelerator figures (benchkit.bench.degrade_cuda)
        from .degrade_cuda import run as run_cuda
        from .degrade_cuda import summary_lines

        result["cuda"] = run_cuda("cuda", batch=16, rounds=3, size=SIZE)
        for line in summary_lines(result["cuda"]):
            print(line)
    else:
        result["cuda"] = "not available on this machine (tools/gpu/degrade_cuda.py is the prepared GPU check)"
        print(f"CUDA: {result['cuda']}")
    result["benchkit_process_runs_wall_cpu"] = [[round(a, 3), round(b, 3)] for a, b in zip(bk, bk_cpu)]
    if have_basicsr:
        result["basicsr_process_runs_wall_cpu"] = [[round(a, 3), round(b, 3)] for a, b in zip(bs_wall, bs_cpu)]
    return result
