"""``blur-synth``: OSDD-style synthetic motion-blur pairs (OSDD Sec. 4; REFERENCE section 5).

Every HQ image of the source folder is cut into overlapping ``patch_size`` squares (stride
``stride``; with ``cover_edges`` one more row/column of patches is aligned to the bottom/right edge
so the whole image is covered); each patch is blurred with its own random trajectory kernel by the
``motion_blur`` generator. One job per patch, key ``<image key>/y<y0:04d>_x<x0:04d>`` (image key =
path relative to the source without suffix), sorted.

OSDD used DF2K (DIV2K + Flickr2K, 3,550 images, ~2040 x 1400 px) -> 121K 512 x 512 patches; its stride
is not given. The default stride 256 gives ~30-35 patches per 2K image, consistent with 121K / 3,550 = 34.

Images smaller than a patch (``small_images``): ``skip`` (default) records a failure line naming the
file and the fix; ``pad`` makes one patch, key ``<image key>/y0000_x0000``, from the image
symmetric-padded (mirror with edge repeat) to ``patch_size`` around its centre; the padding is recorded.

Embedded demo source (``--source embedded``): 256 x 256 photos, so pass smaller patches, e.g.
``benchkit build-dataset blur-synth --source embedded --set patch_size=128 --set stride=64``
(8 images x 9 patches = 72 pairs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchkit.builders.base import DatasetBuilder
from benchkit.builders.generator_producer import GeneratorSampling, image_jobs
from benchkit.errors import BadInputError
from benchkit.generators.motion.pipeline import MotionBlurConfig
from benchkit.runner import Job


@dataclass(frozen=True)
class BlurSynthConfig:
    patch_size: int = 512  # px, square patches (OSDD: 512)
    stride: int = 256  # px between patch origins (< patch_size overlaps)
    cover_edges: bool = True  # add patches flush with the bottom/right edges when the stride misses them
    small_images: Literal["skip", "pad"] = "skip"  # images smaller than a patch
    motion: MotionBlurConfig = field(default_factory=MotionBlurConfig)  # the per-patch blur model

    def __post_init__(self):
        from benchkit.config import check_number

        check_number("patch_size", self.patch_size, 1, 16384, integer=True)
        check_number("stride", self.stride, 1, 16384, integer=True)
        if self.small_images not in ("skip", "pad"):
            raise ValueError(f"small_images must be 'skip' or 'pad', got {self.small_images!r}")


def patch_origins(size: int, patch: int, stride: int, cover_edges: bool) -> list[int]:
    """Patch start positions along an axis of ``size`` px (empty if ``size < patch``)."""
    if size < patch:
        return []
    pos = list(range(0, size - patch + 1, stride))
    if cover_edges and pos[-1] != size - patch:
        pos.append(size - patch)
    return pos


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) read from the file header (Pillow, lazy: no pixel decoding)."""
    from PIL import Image

    from benchkit.images import MAX_PIXELS_ENV, max_pixels

    try:
        with Image.open(path) as im:
            w, h = im.size
    except Image.DecompressionBombError as e:
        raise ValueError(f"image too large ({e}); downscale or tile it") from None
    limit = max_pixels()
    if limit and w * h > limit:
        raise ValueError(f"image too large: header claims {w} x {h} = {w * h:,} pixels, over the limit of "
                         f"{limit:,}; downscale or tile it, or raise {MAX_PIXELS_ENV}")
    return int(h), int(w)


class BlurSynthBuilder(GeneratorSampling, DatasetBuilder):
    name = "blur-synth"
    version = "1"
    Config = BlurSynthConfig
    roles = {"lq": "input", "gt": "target", "psf": "aux"}
    reuse_decoded = True  # consecutive patches of one image share its decoded pixels
    description = ("OSDD-style synthetic motion-blur set: overlapping patches of HQ images, each blurred with its "
                   "own random camera-shake trajectory PSF (Boracchi & Foi 2012 / DeblurGAN model, centred and "
                   "sum-to-1, FFT convolution with reflect padding). Outputs gt (sharp patch), lq (blurred) PNGs "
                   "and psf (.npy float32 kernel).")
    source_help = ("Expected: a folder of HQ images (any depth; png/jpg/bmp/tif/webp), e.g. DF2K = DIV2K_train_HR + "
                   "Flickr2K_HR (https://data.vision.ee.ethz.ch/cvl/DIV2K/ and the Flickr2K release by Lim et al.), "
                   "downloaded manually. `--source embedded` uses the built-in 256x256 demo photos "
                   "(add --set patch_size=128 --set stride=64).")
    source_license = "Patches inherit the licence of the source images (DIV2K/Flickr2K: research use only)."
    citation = ("Boracchi & Foi, Modeling the Performance of Image Restoration From Motion Blur, IEEE TIP 2012; "
                "Kupyn et al., DeblurGAN, CVPR 2018; OSDD (one-step diffusion deblurring), Sec. 4.")

    @classmethod
    def resolve_source(cls, source):
        """``'embedded'`` -> the materialized demo images (benchkit.embedded); anything else -> Path."""
        from benchkit.embedded import materialize_images

        return materialize_images() if str(source) == "embedded" else Path(source)

    def generator(self):
        """The per-patch blur generator (one per builder)."""
        gen = self.__dict__.get("_generator")
        if gen is None:
            from benchkit.generators.motion.pipeline import MotionBlurGenerator

            gen = self._generator = MotionBlurGenerator(self.config.motion)
        return gen

    sample_generator = generator

    def source_root(self) -> Path:
        return self.source

    def source_key(self, job: Job) -> str:
        """The image key: the patch key without its ``/y..._x...`` part."""
        return job.key.rsplit("/", 1)[0]

    def spec(self) -> dict:
        return self.with_aux_spec(super().spec())

    def jobs(self) -> list[Job]:
        cfg = self.config
        out = []
        for ij in image_jobs(self.source):
            rel = ij.payload["path"]
            try:
                h, w = image_size(self.source / rel)
            except (OSError, ValueError, SyntaxError) as e:  # unreadable header: one failing job reports it
                out.append(Job(f"{ij.key}/unreadable", {"path": rel, "error": f"cannot read image header ({e})"}))
                continue
            ys = patch_origins(h, cfg.patch_size, cfg.stride, cfg.cover_edges)
            xs = patch_origins(w, cfg.patch_size, cfg.stride, cfg.cover_edges)
            if not ys or not xs:
                key = f"{ij.key}/y0000_x0000"
                out.append(Job(key, {"path": rel, "y0": 0, "x0": 0, "small": [h, w]}))
                continue
            out += [Job(f"{ij.key}/y{y:04d}_x{x:04d}", {"path": rel, "y0": y, "x0": x}) for y in ys for x in xs]
        return sorted(out, key=lambda j: j.key)

    def job_for(self, record: dict) -> Job:
        return Job(record["key"], dict(record["patch"]["job"]))

    def view(self, job: Job, img):
        """(cut: the job's patch of any HxW[xC] array of the image, {"patch": patch record}); images smaller
        than a patch are symmetric-padded around their centre (``small_images: pad``) or refused (``skip``)."""
        import numpy as np

        from benchkit.ops import pad as ops_pad

        path = self.source / job.payload["path"]
        p = self.config.patch_size
        h, w = img.shape[:2]
        y0, x0 = int(job.payload["y0"]), int(job.payload["x0"])
        pad = [0, 0, 0, 0]
        if "small" in job.payload or h < p or w < p:
            if self.config.small_images == "skip":
                raise BadInputError(path, f"image is {w}x{h}, smaller than the {p}x{p} patch",
                                    "use a smaller --set patch_size=N, --set small_images=pad, or remove the image")
            top, left = max(0, (p - h) // 2), max(0, (p - w) // 2)
            pad = [top, max(0, p - h - top), left, max(0, p - w - left)]
            y0, x0 = (h + pad[0] + pad[1] - p) // 2, (w + pad[2] + pad[3] - p) // 2

        def cut(a):
            if any(pad):
                a = ops_pad(a, ((pad[0], pad[1]), (pad[2], pad[3])), "symmetric")
            return np.ascontiguousarray(a[y0: y0 + p, x0: x0 + p])

        prec = {"y0": y0, "x0": x0, "size": p, "pad_tblr": pad, "image_size": [int(h), int(w)],
                "job": dict(job.payload)}
        return cut, {"patch": prec}

    def card_counts(self) -> dict:
        c = self.config
        return {"patch": f"{c.patch_size}x{c.patch_size} px, stride {c.stride}, cover_edges {c.cover_edges}, "
                         f"small images: {c.small_images}"}
