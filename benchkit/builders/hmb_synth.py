"""``hmb-synth``: a PERSONA-Val-style synthetic human-motion-blur set (HAODiff Sec. 3.1 / 4.1).

Every HQ human image of the source folder gives one 512 x 512 sample (``size``): ``fit: crop`` takes the
centred square of side min(H, W) and resizes it to ``size`` (INTER_AREA down, INTER_CUBIC up); ``fit: resize``
resizes the whole image to ``size`` x ``size`` (aspect not kept). The body-part label map is computed ONCE per
source image at full resolution by the configured segmenter (auxiliary pass, cached in ``aux/`` and in
``$BENCHKIT_CACHE``) and cut the same way with nearest-neighbour resizing. The sample is then degraded by
the ``haodiff`` (default) or ``hmb`` generator (:mod:`benchkit.generators.hmb.pipeline`).

``--source embedded``: people photos shipped inside installed wheels (scikit-image ``astronaut``,
matplotlib ``grace_hopper``, ultralytics ``bus`` and ``zidane``), copied to ``$BENCHKIT_CACHE/embedded/people``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from benchkit.builders.base import DatasetBuilder
from benchkit.builders.generator_producer import GeneratorSampling, image_jobs
from benchkit.errors import BadInputError
from benchkit.generators.hmb.people import EMBEDDED_PEOPLE, materialize_people
from benchkit.generators.hmb.pipeline import HAODiffConfig, HMBConfig
from benchkit.runner import Job


@dataclass(frozen=True)
class HMBSynthConfig:
    size: int = 512  # output side, px (HAODiff trains and tests at 512 x 512)
    fit: Literal["crop", "resize"] = "crop"
    generator: Literal["haodiff", "hmb"] = "haodiff"
    segmenter: str = "sapiens"  # overrides the generator config's segmenter: sapiens | masks | mediapipe
    haodiff: HAODiffConfig = field(default_factory=HAODiffConfig)  # used when generator = haodiff
    hmb: HMBConfig = field(default_factory=HMBConfig)  # used when generator = hmb

    def __post_init__(self):
        from benchkit.config import check_number
        from benchkit.generators.hmb.pipeline import SEGMENTERS

        check_number("size", self.size, 64, 8192, integer=True)
        if self.fit not in ("crop", "resize"):
            raise ValueError(f"fit must be 'crop' or 'resize', got {self.fit!r}")
        if self.generator not in ("haodiff", "hmb"):
            raise ValueError(f"generator must be 'haodiff' or 'hmb', got {self.generator!r}")
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, got {self.segmenter!r}")


class HMBSynthBuilder(GeneratorSampling, DatasetBuilder):
    name = "hmb-synth"
    version = "1"
    Config = HMBSynthConfig
    roles = {"lq": "input", "gt": "target", "hmb_weight": "aux", "psf": "aux"}
    metadata = {"case": "str", "group": "str", "hmb_boxes": "list[[x0,y0,x1,y1]] px", "box_threshold": "float"}
    description = ("Synthetic human-motion-blur set in the style of HAODiff's PERSONA-Val: one 512x512 crop/resize per "
                   "HQ human image, body parts segmented once (cached), one part group motion-blurred with a random "
                   "trajectory PSF and blended by W_s = Norm(G(D(E(mask)))) (eq. 1-2), within the HAODiff pipeline "
                   "(first order none/HMB/Real-ESRGAN, then Real-ESRGAN's second order). Outputs gt, lq PNGs, "
                   "hmb_weight (16-bit PNG), psf (.npy); group and HMB boxes in the manifest meta.")
    source_help = ("Expected: a folder of HQ images of people (any depth; png/jpg/bmp/tif/webp), e.g. the PERSONA "
                   "HQ images, downloaded manually. `--source embedded` uses people photos from installed wheels "
                   "(scikit-image astronaut, matplotlib grace_hopper, ultralytics bus/zidane).")
    source_license = ("Samples inherit the licence of the source images. Embedded photos: "
                      + "; ".join(f"{n}: {v[2]}" for n, v in EMBEDDED_PEOPLE.items())
                      + ". Sapiens segmentation models: CC BY-NC 4.0.")
    citation = ("HAODiff: Human-Aware One-Step Diffusion via Dual-Prompt Guidance (Sec. 3.1); Khirodkar et al., "
                "Sapiens, ECCV 2024; Wang et al., Real-ESRGAN, ICCVW 2021.")

    @classmethod
    def resolve_source(cls, source):
        return materialize_people() if str(source) == "embedded" else Path(source)

    def generator(self):
        gen = self.__dict__.get("_generator")
        if gen is None:
            from benchkit.generators.hmb.pipeline import HAODiffGenerator, HMBGenerator

            c = self.config
            if c.generator == "hmb":
                gen = HMBGenerator(replace(c.hmb, segmenter=c.segmenter))
            else:
                gen = HAODiffGenerator(replace(c.haodiff, hmb=replace(c.haodiff.hmb, segmenter=c.segmenter)))
            self._generator = gen
        return gen

    sample_generator = generator

    def source_root(self) -> Path:
        return self.source

    def spec(self) -> dict:
        return self.with_aux_spec(super().spec())

    def jobs(self) -> list[Job]:
        return image_jobs(self.source)

    def job_for(self, record: dict) -> Job:
        return Job(record["key"], {"path": record["sources"][0]["path"]})

    def view(self, job: Job, img):
        """(cut: centred square crop or whole image, resized to ``size``; 2-D integer maps (labels) with
        nearest neighbour, images with INTER_AREA when shrinking and INTER_CUBIC when enlarging; record)."""
        import cv2
        import numpy as np

        h, w = img.shape[:2]
        s = self.config.size
        if min(h, w) < 16:
            raise BadInputError(self.source / job.payload["path"], f"image is {w}x{h}, too small",
                                "use images of at least 16 px per side (512+ recommended)")
        if self.config.fit == "crop":
            side = min(h, w)
            y0, x0 = (h - side) // 2, (w - side) // 2
            box = [x0, y0, x0 + side, y0 + side]
        else:
            box = [0, 0, w, h]

        def cut(a):
            a = a[box[1]:box[3], box[0]:box[2]]
            if a.shape[0] == s and a.shape[1] == s:
                return np.ascontiguousarray(a)
            if a.ndim == 2 and a.dtype.kind in "ui":
                interp = cv2.INTER_NEAREST
            else:
                interp = cv2.INTER_AREA if a.shape[0] > s else cv2.INTER_CUBIC
            out = cv2.resize(np.ascontiguousarray(a), (s, s), interpolation=interp)
            return np.clip(out, 0.0, 1.0) if out.dtype.kind == "f" else out

        return cut, {"view": {"box_xyxy": box, "size": s, "fit": self.config.fit, "image_size": [int(h), int(w)]}}

    def card(self, summary, spec) -> str:
        from collections import Counter

        from benchkit.manifest import read_jsonl

        text = super().card(summary, spec)
        mpath = Path(getattr(self, "out_dir", "") or ".") / "manifest.jsonl"
        recs = read_jsonl(mpath) if mpath.is_file() else []
        cases = Counter(r.get("meta", {}).get("case", "hmb") for r in recs)
        groups = Counter(r.get("meta", {}).get("group") or "(none)" for r in recs)
        aux = spec.get("aux_passes") or []
        lines = ["## Human motion blur", ""]
        lines += [f"- segmenter: `{a['name']}` v{a['version']}, model sha256 `{a['model_sha256']}`" for a in aux]
        if self.config.segmenter == "mediapipe":
            lines.append("- note: the MediaPipe segmenter APPROXIMATES Sapiens' part map (pose landmarks + person mask)")
        lines.append("- first-order cases: " + ", ".join(f"{k}: {v}" for k, v in sorted(cases.items())))
        lines.append("- part groups: " + ", ".join(f"{k}: {v}" for k, v in sorted(groups.items())))
        lines.append(f"- HMB boxes: {sum(len(r.get('meta', {}).get('hmb_boxes', [])) for r in recs)} in {len(recs)} samples")
        return text + "\n" + "\n".join(lines) + "\n"

    def card_counts(self) -> dict:
        c = self.config
        return {"view": f"{c.size}x{c.size} px ({c.fit}), generator {c.generator}, segmenter {c.segmenter}"}
