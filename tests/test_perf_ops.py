"""The performance rewrites keep the bytes, and the bench reporting helpers work.

- ``to_levels`` (one ``cv2.multiply`` to uint8) equals ``clip(rint(x * 255))`` including values whose
  float32 product lands exactly on, just above and just below a .5 boundary, negatives and > 1;
- the RGB JPEG decode equals the BGR decode with the channels swapped;
- the FFT convolution's per-axis kernel spectrum equals ``rfft2`` bit for bit;
- bench JSON carries wall + CPU clocks and the machine; the README section is generated, not typed.
"""

import json

import numpy as np
import pytest

from benchkit.generators.realesrgan import ops


def _reference_levels(x):
    t = np.multiply(x, np.float32(255.0), dtype=np.float32)
    np.rint(t, out=t)
    np.clip(t, 0, 255, out=t)
    return t.astype(np.uint8)


@pytest.mark.parametrize("shape", [(64, 48, 3), (33, 17, 1), (40, 31), (5, 3, 3)])
def test_to_levels_matches_clip_rint_at_half_boundaries(shape):
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(0.5, 0.7, shape).astype(np.float32)
        k = np.arange(-3, 259)[: x.size // 3]
        v = ((k + 0.5) / np.float32(255)).astype(np.float32)
        idx = rng.choice(x.size, 3 * len(k), replace=False)
        x.flat[idx[: len(k)]] = v
        x.flat[idx[len(k): 2 * len(k)]] = np.nextafter(v, np.float32(9))
        x.flat[idx[2 * len(k):]] = np.nextafter(v, np.float32(-9))
        got = ops.to_levels(x)
        assert got.shape == x.shape and got.dtype == np.uint8
        assert np.array_equal(got, _reference_levels(x))
    assert np.array_equal(ops.to_levels(x.astype(np.float64)), _reference_levels(x.astype(np.float64)))


def test_jpeg_rgb_decode_equals_bgr_decode_swapped():
    import cv2

    rng = np.random.default_rng(1)
    u8 = (rng.random((48, 40, 3)) * 255).astype(np.uint8)
    u8 = cv2.GaussianBlur(u8, (5, 5), 0)
    for q in (30, 75, 95):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        assert ok
        assert np.array_equal(ops.jpeg_u8(u8, q), cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def test_kernel_spectrum_by_axes_is_rfft2_bit_for_bit():
    from scipy import fft

    from benchkit.ops.conv import _fft_product

    rng = np.random.default_rng(2)
    for dt in (np.float32, np.float64):
        a = rng.random((3, 90, 84)).astype(dt)
        k = rng.random((13, 9)).astype(dt)
        ref = fft.irfft2(fft.rfft2(a, s=(96, 90)) * fft.rfft2(k, s=(96, 90)), s=(96, 90))[..., 4:80, 2:70]
        got = _fft_product(a, k, (96, 90), crop=(4, 80, 2, 70))
        assert got.dtype == ref.dtype and np.array_equal(got, ref)


@pytest.mark.parametrize("shape", [(576, 576), (600, 640), (583, 583), (100, 81), (7, 5), (69, 67), (2, 2731)])
def test_irfft2_crop_is_scipy_irfft2_bit_for_bit(shape):
    """The cropped inverse makes pocketfft's c2r passes and its one scaling: equal bytes, float32 and float64."""
    from scipy import fft

    from benchkit.ops.conv import irfft2_crop

    rng = np.random.default_rng(3)
    for dt in (np.float32, np.float64):
        for lead in ((), (3,)):
            fa = fft.rfft2(rng.random(lead + shape).astype(dt))
            ref = fft.irfft2(fa, s=shape)
            crop = (1, shape[0] - 2, 2, shape[1] - 1)
            got = irfft2_crop(fa.copy(), shape, crop)
            assert got.dtype == ref.dtype
            assert np.array_equal(got, ref[..., crop[0]:crop[1], crop[2]:crop[3]])
            assert np.array_equal(irfft2_crop(fa.copy(), shape), ref)


def test_clock_and_machine():
    from benchkit.bench._clock import Clock, machine

    with Clock() as c:
        sum(i * i for i in range(200000))
    assert c.wall > 0 and c.cpu > 0
    m = machine()
    assert m["cpu_count"] >= 1 and m["cpu_model"] and "numpy" in m["libraries"]
    json.dumps(m)


def test_readme_section_is_generated_from_bench_json(tmp_path):
    from benchkit.bench import readme

    mach = {"cpu_model": "Test CPU", "cpu_count": 2, "cpus_usable": 2, "python": "3.11", "libraries": {"numpy": "2"}}
    lines = [
        json.dumps({"bench": "degrade", "date": "2026-12-02T07:00:00Z", "machine": mach, "n_images": 200, "size": 512,
                    "repeats": 2, "benchkit_process_s": 10.0, "benchkit_process_cpu_s": 9.0,
                    "basicsr_process_s": 20.0, "basicsr_process_cpu_s": 18.0, "cpu_ratio_basicsr_vs_benchkit": 2.0,
                    "speedup_vs_basicsr_process": 2.0, "target_cpu_ratio": 3.0, "speedup_degradation_only": 1.5}),
        "some human-readable line",
        json.dumps({"bench": "psf", "date": "2026-12-02T07:10:00Z", "machine": mach, "speedup_per_psf": 1.0}),
        json.dumps({"bench": "psf", "date": "2026-12-02T07:20:00Z", "machine": mach, "speedup_per_psf": 333.0,
                    "batch": 256}),
    ]
    res = tmp_path / "bench.jsonl"
    res.write_text("\n".join(lines) + "\n")
    md = tmp_path / "README.md"
    md.write_text("# T\n\n## Performance\n\n<!-- perf:begin -->\nold 9.99x\n<!-- perf:end -->\n\n## Next\nkeep\n")
    assert readme.main([str(res), "--readme", str(md)]) == 0
    text = md.read_text()
    assert "old 9.99x" not in text and text.startswith("# T\n") and text.endswith("## Next\nkeep\n")
    assert "Test CPU, 2 cores" in text and "2026-12-02" in text
    assert "**2.00x in CPU time**" in text and "**333x wall" in text  # the last psf line wins
    assert readme.main([str(res), "--readme", str(md)]) == 0
    assert md.read_text() == text  # idempotent
    md.write_text("# no markers\n")
    assert readme.main([str(res), "--readme", str(md)]) == 2


def test_manifest_path_rule_is_the_pathlib_rule():
    """The string test of manifest output paths equals the pathlib rule it replaced, on awkward cases."""
    from pathlib import PurePosixPath, PureWindowsPath

    from benchkit.manifest import _relative_inside

    def pathlib_rule(rel):
        if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
            return False
        pp = PurePosixPath(rel)
        return not pp.is_absolute() and not PureWindowsPath(rel).drive and ".." not in pp.parts

    cases = ["a.png", "lq/a.png", "/a.png", "//srv/share/a", "../a", "a/../b", "a/..", "..", "...", "a..b/c",
             "./a", "a/./b", "a//b", "C:a", "C:/a", "c:", "1:x", "::", ":a", "a:b", "a\\b", "a\0b", "", ".", "a/",
             "é/ü.png", " ", "..a", "a/.. ", None, 3]
    for c in cases:
        assert _relative_inside(c) == pathlib_rule(c), c


def test_list_images_selects_what_rglob_selected(tmp_path):
    """The scandir listing equals the ``rglob('*')`` + ``is_file()`` rule it replaced, in the same order: nested
    folders, upper-case and double suffixes, hidden files, links to files (kept), linked and broken links."""
    import os

    from benchkit.images import IMAGE_SUFFIXES, list_images

    for rel in ["a.png", "B.JPG", "c.txt", ".png", ".hidden.png", "x.tar.png", "sub/d.png", "sub/deep/e.webp",
                "sub/deep/f.PNG", "sub b/g.tif", "z/y.jpeg", "a-b/h.bmp", "a/i.png"]:
        p = tmp_path / "root" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "outside.png").write_bytes(b"x")
    root = tmp_path / "root"
    os.symlink(tmp_path / "elsewhere", root / "linked_dir")
    os.symlink(root / "a.png", root / "link_to_file.png")
    os.symlink(root / "missing.png", root / "broken.png")
    os.mkdir(root / "dir.png")
    want = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: p.relative_to(root).as_posix())
    got = list_images(root)
    assert got == want and len(got) == 12


def test_degrade_cuda_check_runs_on_a_cpu_device():
    """The prepared accelerator check (bench degrade on CUDA, tools/gpu/degrade_cuda.py) runs end to end on the
    CPU: both JPEG backends, the codec comparison (libjpeg on both sides here: 0 levels) and the LQ within the
    stated torch-vs-CPU tolerance."""
    from benchkit.bench.degrade_cuda import run, summary_lines

    res = run("cpu", batch=2, rounds=1, size=128)
    assert res["errors"] == {}, res["errors"]
    for b in ("cv2", "torchvision"):
        assert res["img_s"][b] > 0 and 0 < res["jpeg_share"][b] < 1
        d = res["lq_vs_cpu_path"][b]
        assert d["mean"] <= 0.5 and d["frac_over_8"] <= 0.02, d
    assert all(v["max"] == 0 for v in res["jpeg_vs_cpu_codec"].values())
    assert len(summary_lines(res)) == 6
