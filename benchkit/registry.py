"""Every name -> "module:Object" table of benchkit, in one place, resolved lazily.

Nothing here imports the target modules until :func:`resolve` is called, so
``import benchkit.registry`` is cheap. Unknown names raise
:class:`~benchkit.errors.UnknownNameError` with close-match suggestions.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

# Degradation generators (the ``generator:`` key of a benchkit/pipelines/*.yaml file).
GENERATORS: dict[str, str] = {
    "realesrgan": "benchkit.generators.realesrgan.pipeline:RealESRGANGenerator",
    "motion_blur": "benchkit.generators.motion.pipeline:MotionBlurGenerator",
    "hmb": "benchkit.generators.hmb.pipeline:HMBGenerator",
    "haodiff": "benchkit.generators.hmb.pipeline:HAODiffGenerator",
}

# Auxiliary passes generators may need (``Generator.aux_passes``): per-image, model-backed inputs computed
# once per source image and cached (see benchkit/generators/auxpass.py).
AUX_PASSES: dict[str, str] = {
    "sapiens": "benchkit.generators.hmb.segment:SapiensPass",
    "masks": "benchkit.generators.hmb.segment:MasksPass",
    "mediapipe": "benchkit.generators.hmb.segment:MediaPipePass",
}

# Producers by spec.json ``producer.kind`` (replay); kind "dataset" resolves through BUILDERS instead.
PRODUCERS: dict[str, str] = {
    "pipeline": "benchkit.builders.generator_producer:GeneratorProducer",
}

# Dataset builders (``benchkit build-dataset NAME``).
BUILDERS: dict[str, str] = {
    "blur-synth": "benchkit.builders.blur_synth:BlurSynthBuilder",
    "gopro-enlarged": "benchkit.builders.gopro:GoProEnlargedBuilder",
    "gopro-test": "benchkit.builders.gopro:GoProTestBuilder",
    "inscene": "benchkit.builders.inscene:InSceneBuilder",
    "hmb-synth": "benchkit.builders.hmb_synth:HMBSynthBuilder",
    "mpii-test": "benchkit.builders.mpii:MPIITestBuilder",
}

# Metrics (``--metrics a,b``); see benchkit/metrics/catalog.py for metadata.
METRICS: dict[str, str] = {
    "psnr": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "ssim": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "psnr_rgb": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "ssim_rgb": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "lpips": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "dists": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "topiq_fr": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "fid": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "clipiqa": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "musiq": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "maniqa": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "niqe": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "liqe": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "ilniqe": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "topiq_nr": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "hyperiqa": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "tres": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "arniqa": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "qalign": "benchkit.metrics.pyiqa_backend:PyiqaMetric",
    "msswd": "benchkit.metrics.msswd:MSSWD",
    "idscore": "benchkit.metrics.idscore:IDScore",
    "hmbr": "benchkit.metrics.hmbr:HMBR",
}

# Restoration methods (``--methods a,b`` / ``all``).
METHODS: dict[str, str] = {
    "identity": "benchkit.methods.classical:Identity",
    "bicubic": "benchkit.methods.classical:Bicubic",
    "unsharp": "benchkit.methods.classical:Unsharp",
    "nlmeans": "benchkit.methods.classical:NLMeans",
    "wiener": "benchkit.methods.deconv:Wiener",
    "richardson-lucy": "benchkit.methods.deconv:RichardsonLucy",
    "haodiff": "benchkit.methods.onestep.haodiff:HAODiff",
    "haodiff-official": "benchkit.methods.onestep.haodiff:HAODiffOfficial",
    "hero-sr": "benchkit.methods.onestep.herosr:HeroSR",
    "hero-sr-official": "benchkit.methods.onestep.herosr:HeroSROfficial",
    "osediff": "benchkit.methods.onestep.osediff:OSEDiff",
    "osediff-official": "benchkit.methods.onestep.osediff:OSEDiffOfficial",
    "s3diff": "benchkit.methods.onestep.s3diff:S3Diff",
    "s3diff-official": "benchkit.methods.onestep.s3diff:S3DiffOfficial",
    "invsr": "benchkit.methods.onestep.invsr:InvSR",
    "invsr-official": "benchkit.methods.onestep.invsr:InvSROfficial",
    "sinsr": "benchkit.methods.sinsr:SinSR",
    "nafnet": "benchkit.methods.external:NAFNet",
    "restormer": "benchkit.methods.external:Restormer",
    "osdd": "benchkit.methods.external:OSDD",
    "fidediff": "benchkit.methods.external:FideDiff",
    "face2scene": "benchkit.methods.external:Face2Scene",
}

# Benchmarks (``benchkit bench NAME``).
BENCHES: dict[str, str] = {
    "gopro": "benchkit.bench.gopro:run",
    "psf": "benchkit.bench.psf:run",
    "blur": "benchkit.bench.blur:run",
    "harness": "benchkit.bench.harness:run",
    "degrade": "benchkit.bench.degrade:run",
    "resume": "benchkit.bench.resume:run",
    "evaluate-scale": "benchkit.bench.evalscale:run",
    "inscene": "benchkit.bench.inscene:run",
    "adapters": "benchkit.bench.adapters:run",
    "hmb": "benchkit.bench.hmb:run",
    "hmbr": "benchkit.bench.hmbr:run",
}

# CLI sub-commands: name -> "module:register" where register(subparsers) adds the parser.
COMMANDS: dict[str, str] = {
    "degrade": "benchkit.commands.degrade:register",
    "replay": "benchkit.commands.replay:register",
    "pipelines": "benchkit.commands.pipelines:register",
    "demo": "benchkit.commands.demo:register",
    "bench": "benchkit.commands.bench:register",
    "weights": "benchkit.commands.weights:register",
    "score": "benchkit.commands.score:register",
    "build-dataset": "benchkit.commands.build_dataset:register",
    "evaluate": "benchkit.commands.evaluate:register",
    "publish": "benchkit.commands.publish:register",
    "export": "benchkit.commands.export:register",
    "figure": "benchkit.commands.figure:register",
    "train-detector": "benchkit.commands.train_detector:register",
}

# Params classes by stable type name (the ``"__type__"`` of manifest params; each class declares its
# ``type_name``). Names are forever: a moved class changes only its target here. 0.1.0 module paths are
# mapped in benchkit.params.LEGACY_TYPES.
PARAMS: dict[str, str] = {
    "realesrgan.RealESRGANParams": "benchkit.generators.realesrgan.params:RealESRGANParams",
    "realesrgan.KernelParams": "benchkit.generators.realesrgan.params:KernelParams",
    "realesrgan.ResizeParams": "benchkit.generators.realesrgan.params:ResizeParams",
    "realesrgan.NoiseParams": "benchkit.generators.realesrgan.params:NoiseParams",
    "realesrgan.JpegParams": "benchkit.generators.realesrgan.params:JpegParams",
    "motion.MotionBlurParams": "benchkit.generators.motion.pipeline:MotionBlurParams",
    "motion.TrajectoryParams": "benchkit.generators.motion.trajectory:TrajectoryParams",
    "motion.RadialFieldParams": "benchkit.generators.motion.svblur:RadialFieldParams",
    "hmb.HMBParams": "benchkit.generators.hmb.pipeline:HMBParams",
    "hmb.HAODiffParams": "benchkit.generators.hmb.pipeline:HAODiffParams",
}

TABLES: dict[str, dict[str, str]] = {
    "generator": GENERATORS,
    "aux_pass": AUX_PASSES,
    "producer": PRODUCERS,
    "builder": BUILDERS,
    "metric": METRICS,
    "method": METHODS,
    "bench": BENCHES,
    "command": COMMANDS,
    "params": PARAMS,
}


def suggest(name: str, choices) -> str:
    """A ' Did you mean ...?' suffix for ``name`` among ``choices`` ('' if nothing is close)."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_name(kind: str, name: str, table: dict[str, Any]) -> None:
    from benchkit.errors import UnknownNameError

    if name not in table:
        known = ", ".join(sorted(table)) or "(none)"
        raise UnknownNameError(f"unknown {kind} {name!r}.{suggest(name, table)} Known: {known}")


def load_object(target: str) -> Any:
    """Import ``"pkg.module:Attr"`` and return the attribute."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve(kind: str, name: str) -> Any:
    """Return the object registered as ``name`` in table ``kind`` (importing it on first use)."""
    table = TABLES[kind]
    check_name(kind, name, table)
    return load_object(table[name])
