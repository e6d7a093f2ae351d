"""``benchkit bench inscene``: InScene filter stages 1-2 on gallery-sized JPEGs (default 3000x4000, quality 92).

Synthetic gallery photos: a wheel-shipped portrait (grace_hopper / astronaut, upscaled) pasted at a varying
place into a 4000x3000 textured scene, JPEG-encoded in memory. Per image, as the builder runs it: read the
header, decode ONCE (8-bit RGB), resize so the short side is 1024, detect (mediapipe full-range BlazeFace),
crop, face-area and variance-of-Laplacian checks, five landmarks (face mesh). Reports images/s through
stages 1-2 and each step's share (the detector's = detection + landmarks), once with the builder's default
reduced JPEG decode (libjpeg DCT scaling to >= 1024 px) and once with a full-size decode. Stage 3 (IQA) is
not timed.
"""

from __future__ import annotations


def _gallery(n: int, h: int, w: int, quality: int):
    import cv2
    import numpy as np

    from benchkit.embedded import EMBEDDED_IMAGES, package_file

    files = {name: package_file(pkg, rel) for name, pkg, rel in EMBEDDED_IMAGES}
    faces = [cv2.imread(str(files[k])) for k in ("grace_hopper", "astronaut")]
    scene = cv2.resize(cv2.imread(str(files["coffee"])), (w, h), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = scene.copy()
        img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, img.shape, dtype=np.int16), 0, 255).astype(np.uint8)
        f = faces[i % 2]
        side = int(min(h, w) * (0.35 + 0.1 * (i % 3)))
        f = cv2.resize(f, (side, int(side * f.shape[0] / f.shape[1])), interpolation=cv2.INTER_CUBIC)
        y = int(rng.integers(0, h - f.shape[0]))
        x = int(rng.integers(0, w - f.shape[1]))
        img[y: y + f.shape[0], x: x + f.shape[1]] = f
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(buf.tobytes())
    return out


def _pass(datas, reduced: bool):
    import time

    from benchkit.builders.inscene import (InSceneBuilder, InSceneConfig, _Reject, decode_rgb8, header_size,
                                           jpeg_reduction)

    b = InSceneBuilder(InSceneConfig(iqa_filter=False, degradation="none", jpeg_reduced_decode=reduced))
    b.detector()  # model load outside the timed loop
    decode_rgb8(datas[0], "warmup")
    tm: dict = {}
    kept = 0
    t_all = time.perf_counter()
    for i, data in enumerate(datas):
        t0 = time.perf_counter()
        hh, ww = header_size(data, f"img{i}")
        red = jpeg_reduction(data, min(hh, ww), b.config.crop_size) if reduced else 1
        img = decode_rgb8(data, f"img{i}", red)
        tm["decode"] = tm.get("decode", 0.0) + time.perf_counter() - t0
        try:
            b.filter_image(img, f"img{i}", "bench", timings=tm, resolution=(hh, ww), reduction=red)
            kept += 1
        except _Reject:
            pass
    return time.perf_counter() - t_all, tm, kept


def run(args) -> dict:
    quick = bool(getattr(args, "quick", False))
    n = int(getattr(args, "n", None) or (3 if quick else 8))
    h, w = (1500, 2000) if quick else (3000, 4000)
    datas = _gallery(n, h, w, 92)
    result = {"bench": "inscene", "n": n, "size": [h, w], "detector": "mediapipe"}
    for reduced in (True, False):
        total, tm, kept = _pass(datas, reduced)
        det = tm.get("detect", 0.0) + tm.get("landmarks", 0.0)
        label = "reduced" if reduced else "full"
        print(f"{n} JPEGs {w}x{h} (quality 92), stages 1-2, one process, detector mediapipe, {label} JPEG decode "
              f"(each image decoded once); kept {kept}/{n}")
        print(f"  {n / total:.2f} images/s ({1e3 * total / n:.0f} ms/image)")
        for k in ("decode", "resize", "detect", "landmarks", "laplacian"):
            print(f"  {k:10s} {1e3 * tm.get(k, 0.0) / n:7.1f} ms/image ({100 * tm.get(k, 0.0) / total:4.1f}%)")
        print(f"  detector share (detect + landmarks): {100 * det / total:.1f}%")
        result[label] = {"kept": kept, "images_per_s": round(n / total, 3), "ms_per_image": round(1e3 * total / n, 1),
                         "detector_share": round(det / total, 4),
                         **{f"{k}_ms": round(1e3 * v / n, 2) for k, v in sorted(tm.items())}}
    return result
