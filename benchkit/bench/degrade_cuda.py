"""The Real-ESRGAN torch path on an accelerator (issue 15): batch img/s, the share of time in JPEG, GPU JPEG
against the CPU codec. Run by ``benchkit bench degrade`` when CUDA is available and by
``tools/gpu/degrade_cuda.py`` (the prepared script for a lent GPU); on a CPU device it runs the batched torch
kernels (``impl="torch"``), which checks the code, not the speed.

Figures (one batch of ``batch`` distinct 512 x 512 images from the embedded photographs, x4, version 2 params):

- ``img_s[backend]``: images/s of ``apply_batch(impl="torch")`` with JPEG on ``cv2`` (the host codec, the CPU
  path's bytes) or ``torchvision`` (``encode_jpeg``/``decode_jpeg`` on the device tensor: nvJPEG on CUDA),
  best of ``rounds`` passes, device-synchronised, after one warm-up pass;
- ``jpeg_share[backend]``: the fraction of one pass spent in the JPEG round trips (a separate pass with each
  round trip synchronised and timed, so the img/s passes are not slowed by the probes);
- ``jpeg_vs_cpu_codec``: the JPEG round trip alone, device codec against OpenCV, on the embedded images at
  quality 30 / 60 / 95: max and mean |diff| in 8-bit levels;
- ``lq_vs_cpu_path[backend]``: the batch's LQ against ``RealESRGANGenerator.apply`` (the CPU path) on the same
  params: mean |diff| levels, max, share of values more than 8 levels apart; the stated tolerance between the
  torch and CPU paths is mean <= 0.5 levels and <= 2 % beyond 8 (``tests/test_realesrgan_torch.py``).
"""

from __future__ import annotations

import time

BACKENDS = ("cv2", "torchvision")


def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _diff_stats(a, b) -> dict:
    import numpy as np

    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"max": int(d.max()), "mean": round(float(d.mean()), 4), "frac_over_8": round(float((d > 8).mean()), 5)}


def run(device: str = "cuda", batch: int = 16, rounds: int = 3, size: int = 512) -> dict:
    """The figures above on ``device``; every part that fails is recorded as an error string, never raised."""
    import numpy as np
    import torch

    from benchkit.config import load_pipeline
    from benchkit.embedded import materialize_images
    from benchkit.generators.base import SampleContext
    from benchkit.generators.realesrgan import torch_path
    from benchkit.images import read_image
    from benchkit.seeding import rng_for

    _name, gen, _ = load_pipeline("realesrgan_x4")
    bases = [read_image(p) for p in sorted(materialize_images(size=size).glob("*.png"))]
    imgs = []
    for i in range(batch):  # distinct images: the 8 photographs, then flipped / rotated copies
        b = bases[i % len(bases)]
        imgs.append(np.ascontiguousarray(np.rot90(b, (i // len(bases)) % 4)))
    ctxs = [SampleContext(f"c{i}", size, size) for i in range(batch)]
    params = [gen.sample(rng_for(0, f"c{i}"), ctxs[i]) for i in range(batch)]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous().to(device)
    res = {"device": str(device), "batch": batch, "size": size, "rounds": rounds, "generator_version": gen.version,
           "img_s": {}, "jpeg_share": {}, "lq_vs_cpu_path": {}, "errors": {}}
    if str(device).startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name(torch.device(device))
    cpu_lq = np.stack([gen.apply(i, p, c)["lq"] for i, p, c in zip(imgs, params, ctxs)])

    def one_pass(backend):
        return torch_path.apply_batch(x, params, gen.config, jpeg_backend=backend, impl="torch")

    for backend in BACKENDS:
        try:
            lq = one_pass(backend)  # warm-up (cuDNN plans, nvJPEG handles)
            _sync(device)
            best = float("inf")
            for _ in range(rounds):
                t0 = time.perf_counter()
                one_pass(backend)
                _sync(device)
                best = min(best, time.perf_counter() - t0)
            res["img_s"][backend] = round(batch / best, 2)
            got = (lq * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            res["lq_vs_cpu_path"][backend] = _diff_stats(got, cpu_lq)
            res["jpeg_share"][backend] = _jpeg_share(one_pass, backend, device, torch_path)
        except Exception as e:  # recorded: e.g. nvJPEG missing from this torchvision build
            res["errors"][backend] = f"{type(e).__name__}: {e}"
    try:
        res["jpeg_vs_cpu_codec"] = _codec_parity(bases, device)
    except Exception as e:
        res["errors"]["jpeg_vs_cpu_codec"] = f"{type(e).__name__}: {e}"
    return res


def _jpeg_share(one_pass, backend, device, torch_path) -> float:
    """Share of one pass's wall time inside ``jpeg_t`` (each call synchronised before and after)."""
    real = torch_path.jpeg_t
    spent = [0.0]

    def timed(*a, **k):
        _sync(device)
        t0 = time.perf_counter()
        out = real(*a, **k)
        _sync(device)
        spent[0] += time.perf_counter() - t0
        return out

    torch_path.jpeg_t = timed
    try:
        _sync(device)
        t0 = time.perf_counter()
        one_pass(backend)
        _sync(device)
        total = time.perf_counter() - t0
    finally:
        torch_path.jpeg_t = real
    return round(spent[0] / total, 4)


def _codec_parity(bases, device) -> dict:
    """JPEG round trip of each embedded image at q 30/60/95: the device codec (torchvision) against OpenCV."""
    import numpy as np
    import torch

    from benchkit.generators.realesrgan import ops
    from benchkit.generators.realesrgan.torch_path import jpeg_t

    out = {}
    for q in (30, 60, 95):
        ds = []
        for b in bases:
            u8 = ops.to_levels(b)
            ref = ops.jpeg_u8(u8, q)
            t = torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))).to(device, torch.float32) / 255.0
            got = (jpeg_t(t, q, "torchvision") * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            ds.append(np.abs(got.astype(np.int16) - ref.astype(np.int16)))
        d = np.stack(ds)
        out[str(q)] = {"max": int(d.max()), "mean": round(float(d.mean()), 4)}
    return out


def summary_lines(res: dict) -> list[str]:
    """Human-readable lines of :func:`run`'s result."""
    lines = [f"torch path on {res['device']} ({res.get('gpu', '')}), batch {res['batch']} of {res['size']}x{res['size']}:"]
    for b in BACKENDS:
        if b in res["img_s"]:
            d = res["lq_vs_cpu_path"][b]
            lines.append(f"  JPEG {b}: {res['img_s'][b]} img/s, {100 * res['jpeg_share'][b]:.1f}% of the time in JPEG; "
                         f"LQ vs CPU path: mean {d['mean']} levels, max {d['max']}, {100 * d['frac_over_8']:.2f}% > 8")
        elif b in res["errors"]:
            lines.append(f"  JPEG {b}: failed: {res['errors'][b]}")
    for q, d in (res.get("jpeg_vs_cpu_codec") or {}).items():
        lines.append(f"  device JPEG vs OpenCV at q {q}: max {d['max']} levels, mean {d['mean']}")
    return lines
