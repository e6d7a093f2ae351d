"""The metric catalog: metadata only (no pyiqa/torch import).

Conventions for every metric: inputs are float32 RGB ``HxWx3`` arrays in ``[0, 1]``;
FR metrics take ``(dist, ref)``; NR metrics take ``dist`` only; dataset-level metrics
(FID) score two folders. Higher/lower-is-better, weight files and pyiqa settings are
taken from pyiqa 0.1.16 (``pyiqa/default_model_configs.py`` and ``pyiqa/archs/*``).

Weight files are paths relative to the weights root, which uses the ``$TORCH_HOME``
layout pyiqa expects: ``hub/pyiqa/`` (pyiqa's own files, name = URL basename),
``hub/checkpoints/`` (torchvision / ``torch.hub`` files), ``hub/clip/`` (OpenAI CLIP)
and ``huggingface/hub/models--<org>--<repo>`` (Hugging Face cache, timm backbones).

Licences: pyiqa is PolyForm-Noncommercial-1.0.0; the pyiqa-hosted weights are
CC BY-NC-SA 4.0. Results computed with them are for non-commercial research use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

PYIQA_VERSION = "0.1.16"  # the pyiqa release these settings/weights were checked against
KINDS = ("FR", "NR", "dataset")
BACKENDS = ("pyiqa", "benchkit")


@dataclass(frozen=True)
class MetricInfo:
    """Static description of one metric.

    ``settings`` holds everything that changes the number (pyiqa metric name and
    kwargs, crop border, colour space, resize, seed ...); ``version`` changes when the
    implementation or settings change, so cached scores can be invalidated on it.
    """

    name: str
    kind: str  # 'FR' | 'NR' | 'dataset'
    higher_is_better: bool
    version: str
    backend: str  # 'pyiqa' | 'benchkit'
    settings: dict = field(default_factory=dict)
    weights: tuple = ()
    input_range: str = "[0,1] RGB"
    description: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"metric {self.name}: backend must be one of {BACKENDS}, got {self.backend!r}")
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        object.__setattr__(self, "weights", tuple(self.weights))

    def as_dict(self) -> dict:
        """JSON-friendly copy (settings as a plain dict, weights as a list)."""
        return {
            "name": self.name, "kind": self.kind, "higher_is_better": self.higher_is_better,
            "version": self.version, "backend": self.backend, "settings": _plain(self.settings),
            "weights": list(self.weights), "input_range": self.input_range,
            "description": self.description,
        }


def _plain(obj):
    if isinstance(obj, (dict, MappingProxyType)):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --- weight file names (relative to the weights root) ---------------------------------
P = "hub/pyiqa/"
C = "hub/checkpoints/"
HF = "huggingface/hub/"
ALEXNET = C + "alexnet-owt-7be5be79.pth"  # torchvision AlexNet_Weights.IMAGENET1K_V1
VGG16 = C + "vgg16-397923af.pth"  # torchvision VGG16_Weights.IMAGENET1K_V1
RESNET50_TV = C + "resnet50-0676ba61.pth"  # torchvision ResNet50_Weights.IMAGENET1K_V1
RESNET50_TIMM = HF + "models--timm--resnet50.a1_in1k"  # timm 'resnet50' default tag
VIT_B8_TIMM = HF + "models--timm--vit_base_patch8_224.augreg2_in21k_ft_in1k"
CLIP_RN50 = "hub/clip/RN50.pt"
CLIP_VITB32 = "hub/clip/ViT-B-32.pt"
QALIGN_HF = HF + "models--q-future--one-align"

# sha256 of files whose name does not carry a hash prefix (OpenAI CLIP publishes the
# full sha256 in its download URL, see pyiqa/archs/clip_model.py).
KNOWN_SHA256 = {
    CLIP_RN50: "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
    CLIP_VITB32: "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
}

# TorchScript archives pyiqa loads with torch.jit.load (code + pickled objects): benchkit loads them only
# when their full sha256 is pinned above; without a pin the metric is unavailable (ARNIQA's regressor:
# no hash is published for it).
TORCHSCRIPT = frozenset({CLIP_RN50, CLIP_VITB32, P + "regressor_koniq10k.pth"})


def _v(extra: str = "") -> str:
    return f"1+pyiqa{PYIQA_VERSION}" + (f"+{extra}" if extra else "")


def _py(name, kind, hib, pyiqa_name, weights=(), description="", **kwargs) -> MetricInfo:
    settings = {"pyiqa_name": pyiqa_name, "pyiqa_kwargs": kwargs.pop("pyiqa_kwargs", {})}
    settings.update(kwargs)
    return MetricInfo(name=name, kind=kind, higher_is_better=hib, version=_v(), backend="pyiqa",
                      settings=settings, weights=tuple(weights), description=description)


CATALOG: tuple = (
    # --- full-reference, weight-free ---------------------------------------------------
    _py("psnr", "FR", True, "psnr", color_space="ycbcr", crop_border=0,
        description="PSNR in dB (data range 1.0) on the BT.601 limited-range YCbCr Y channel "
                    "(SR-paper convention, as BasicSR test_y_channel=True); crop_border pixels "
                    "removed on each side (default 0, settable). color_space: 'ycbcr' | 'yiq' "
                    "(pyiqa default Y, full range) | 'rgb'."),
    _py("ssim", "FR", True, "ssim", pyiqa_kwargs={"downsample": False}, color_space="ycbcr",
        crop_border=0,
        description="SSIM in [0,1], 11x11 Gaussian window sigma 1.5, no downsampling, on the "
                    "BT.601 YCbCr Y channel rounded to 8-bit levels (pyiqa, as used by SR papers' "
                    "evaluation scripts); crop_border default 0. "
                    "color_space='yiq' reproduces the official MATLAB values of pyiqa's calibration."),
    _py("psnr_rgb", "FR", True, "psnr", color_space="rgb", crop_border=0,
        description="PSNR in dB over the three RGB channels (MSE averaged over channels)."),
    _py("ssim_rgb", "FR", True, "ssim", pyiqa_kwargs={"downsample": False}, color_space="rgb",
        crop_border=0,
        description="SSIM in [0,1] computed per RGB channel and averaged (pyiqa 'ssimc')."),
    # --- full-reference, learned -------------------------------------------------------
    _py("lpips", "FR", False, "lpips", weights=(P + "LPIPS_v0.1_alex-df73285e.pth", ALEXNET),
        description="LPIPS v0.1 AlexNet (Zhang et al. 2018); distance, ~[0,1], lower is better."),
    _py("dists", "FR", False, "dists", weights=(P + "DISTS_weights-f5e65c96.pth", VGG16),
        description="DISTS (Ding et al. 2020), VGG16 backbone; ~[0,1], lower is better."),
    _py("topiq_fr", "FR", True, "topiq_fr",
        weights=(P + "cfanet_fr_kadid_res50-2c4cc61d.pth", RESNET50_TIMM),
        description="TOPIQ full-reference (Chen et al. 2024), ResNet50, trained on KADID-10k; ~[0,1]."),
    # --- dataset level ---------------------------------------------------------------
    _py("fid", "dataset", False, "fid", weights=(P + "pt_inception-2015-12-05-6726825d.pth",),
        fid_mode="clean",
        description="FID between two folders (pyiqa clean-fid style, Inception-v3 pool3 "
                    "features, mode='clean'); lower is better. Dataset-level: use score_folders()."),
    # --- no-reference ----------------------------------------------------------------
    _py("clipiqa", "NR", True, "clipiqa", weights=(CLIP_RN50,),
        description="CLIP-IQA (Wang et al. 2023), CLIP RN50 with antonym prompts; [0,1]."),
    _py("musiq", "NR", True, "musiq", weights=(P + "musiq_koniq_ckpt-e95806b9.pth",),
        description="MUSIQ (Ke et al. 2021) trained on KonIQ-10k; ~[0,100]."),
    _py("maniqa", "NR", True, "maniqa-pipal",
        weights=(P + "MANIQA_PIPAL-ae6d356b.pth", VIT_B8_TIMM),
        description="MANIQA (Yang et al. 2022) trained on PIPAL (pyiqa 'maniqa-pipal'); ~[0,1]."),
    _py("niqe", "NR", False, "niqe", weights=(P + "niqe_modelparameters.mat",),
        description="NIQE (Mittal et al. 2013) on the Y channel with the LIVE pristine model "
                    "(provision with `benchkit weights provision niqe`); lower is better."),
    _py("liqe", "NR", True, "liqe", weights=(P + "liqe_koniq.pt", CLIP_VITB32),
        description="LIQE (Zhang et al. 2023) KonIQ checkpoint, CLIP ViT-B/32; [1,5]. "
                    "Its text features are computed from the pinned CLIP weights in a private temporary "
                    "folder (pyiqa's liqe_text_feat.pt cache is never read from the weights root)."),
    _py("ilniqe", "NR", False, "ilniqe", weights=(P + "ILNIQE_templateModel.mat",),
        description="IL-NIQE (Zhang et al. 2015); lower is better."),
    _py("topiq_nr", "NR", True, "topiq_nr",
        weights=(P + "cfanet_nr_koniq_res50-9a73138b.pth", RESNET50_TIMM),
        description="TOPIQ no-reference (Chen et al. 2024), ResNet50, KonIQ-10k; ~[0,1]."),
    _py("hyperiqa", "NR", True, "hyperiqa",
        weights=(P + "HyperIQA-resnet50-koniq10k-c96c41b1.pth", RESNET50_TIMM),
        description="HyperIQA (Su et al. 2020), ResNet50, KonIQ-10k; ~[0,1]."),
    _py("tres", "NR", True, "tres", weights=(P + "tres_koniq-f0502926.pth", RESNET50_TV),
        description="TReS (Golestaneh et al. 2022), KonIQ-10k; ~[0,100]."),
    _py("arniqa", "NR", True, "arniqa",
        weights=(C + "ARNIQA.pth", P + "regressor_koniq10k.pth", RESNET50_TV),
        description="ARNIQA (Agnolucci et al. 2024), KonIQ-10k regressor; [0,1]."),
    _py("qalign", "NR", True, "qalign", weights=(QALIGN_HF,),
        description="Q-Align (Wu et al. 2024), mPLUG-Owl2 LMM (Hugging Face q-future/one-align, "
                    "~16 GB); [1,5]. pyiqa's implementation pins an old transformers release."),
    # --- benchkit-native -------------------------------------------------------------
    MetricInfo(
        name="msswd", kind="FR", higher_is_better=False, version="2", backend="benchkit",
        settings={"levels": 5, "patch_size": 11, "num_projections": 128, "seed": 0,
                  "resize_short_side": 256, "color_space": "lab"},
        weights=(),
        description="MS-SWD colour distance (He et al. 2024): multi-scale sliced Wasserstein "
                    "distance between 11x11 Lab patch distributions on a 5-level Gaussian "
                    "pyramid, 128 fixed random projections (seeded); >= 0, lower is better. "
                    "Weight-free; not pyiqa's learned 'msswd'."),
    MetricInfo(
        name="idscore", kind="FR", higher_is_better=True, version="1", backend="benchkit",
        settings={"arcface_file": "faces/w600k_r50.onnx", "normalization": "auto", "detector": "mediapipe",
                  "detector_file": None, "min_confidence": 0.5, "alignment": "arcface-5pt-similarity-112"},
        weights=("faces/w600k_r50.onnx",),
        description="ArcFace identity score (Face2Scene Table 7): cosine similarity in [-1, 1] between the "
                    "ArcFace embeddings of the output's and the target's face, both cropped with the five-point "
                    "similarity alignment found on the target (or recorded in the sample's meta); user-provided "
                    "ArcFace ONNX (insightface w600k_r50.onnx) run with onnxruntime; n/a when the target shows "
                    "no face."),
    MetricInfo(
        name="hmbr", kind="dataset", higher_is_better=False, version="1", backend="benchkit",
        settings={"weights": "hmb/hmb-detector.onnx", "sha256": "", "conf": 0.25, "iou": 0.7, "imgsz": 640},
        weights=(),
        description="HMB-R (HAODiff Sec. 4.1, Table 2): detections of a YOLO11 human-motion-blur detector on the "
                    "restored images / detections on the inputs (dataset-level ratio of totals; lower is better; "
                    "> 1 possible). Detector = the user's file `weights` under the weights root (.onnx, "
                    ".torchscript, or a sha256-pinned ultralytics .pt; train one with `benchkit train-detector "
                    "hmb`); ultralytics predict defaults conf 0.25, iou 0.7, imgsz 640. Input-side counts are "
                    "computed once per dataset; per-image counts are in per_image.csv."),
)

BY_NAME = {m.name: m for m in CATALOG}

# Where each metric's implementation lives ("module:Object"); mirrored in benchkit.registry.METRICS.
_NATIVE = {"msswd": "benchkit.metrics.msswd:MSSWD", "idscore": "benchkit.metrics.idscore:IDScore",
           "hmbr": "benchkit.metrics.hmbr:HMBR"}
TARGETS = {
    m.name: (_NATIVE[m.name] if m.backend == "benchkit" else "benchkit.metrics.pyiqa_backend:PyiqaMetric")
    for m in CATALOG
}
