"""The generator-driven producer behind ``benchkit degrade`` and the ``blur-synth`` builder.

:class:`GeneratorSampling` is the one per-sample loop: read a source image (sha256 recorded), cut the
sample's view of it (:meth:`~GeneratorSampling.view`: the whole image for ``degrade``, a patch for
``blur-synth``), run each auxiliary pass the generator lists in ``aux_passes`` ONCE per source image
(cached in the dataset and in ``$BENCHKIT_CACHE``, :mod:`benchkit.generators.auxpass`), cut the same
view of every pass result, then ``params = gen.sample(rng(root seed, key, "params"), ctx)`` and
``gen.apply(view, params, ctx)``. Replay re-applies the recorded params to the verified source and the
verified cached auxiliary results (no sampling, no model).

:class:`GeneratorProducer` (kind ``pipeline``, ``benchkit degrade``) applies a pipeline to every image
of a folder; the runner finds it for replay through ``benchkit.registry.PRODUCERS``.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from benchkit.errors import BadInputError, BenchkitError
from benchkit.runner import Job, Producer


def image_jobs(input_dir) -> list[Job]:
    """One job per image below ``input_dir``; key = relative path without suffix (with it on clashes)."""
    from benchkit.images import list_images

    input_dir = Path(input_dir)
    paths = list_images(input_dir)
    if not paths:
        from benchkit.images import IMAGE_SUFFIXES

        raise BadInputError(input_dir, "no images found", f"put image files ({', '.join(IMAGE_SUFFIXES)}) in it")
    rels = [p.relative_to(input_dir).as_posix() for p in paths]
    stems = [r.rsplit(".", 1)[0] for r in rels]
    keys = list(stems)
    while True:  # a stem used twice, or equal to another file's fallback key (a.png + a.jpg + a.png.png)
        counts = Counter(keys)
        clash = [i for i, k in enumerate(keys) if counts[k] > 1 and k != rels[i]]
        if not clash:
            break
        for i in clash:
            keys[i] = rels[i]  # relative paths are unique, so this ends
    jobs = [Job(key, {"path": rel}) for rel, key in zip(rels, keys)]
    return sorted(jobs, key=lambda j: j.key)


_DECODED = threading.local()  # one decoded image per worker thread/process: consecutive patches share it


def read_source(path: Path, reuse: bool = False):
    """(float32 RGB image, sha256 of the file bytes) of ``path``; with ``reuse`` the last image decoded on
    this thread is returned again when the file (path, size, mtime) is unchanged."""
    from benchkit.fsio import sha256_bytes
    from benchkit.images import read_image_bytes

    if not reuse:
        img, data = read_image_bytes(path)
        return img, sha256_bytes(data)
    st = path.stat()
    tag = (str(path), st.st_size, st.st_mtime_ns)
    hit = getattr(_DECODED, "entry", None)
    if hit is None or hit[0] != tag:
        img, data = read_image_bytes(path)
        hit = (tag, img, sha256_bytes(data))
        _DECODED.entry = hit
    return hit[1], hit[2]


def finish_outputs(gen, outs: dict) -> dict:
    """``gen.encode_outputs(outs)`` when the generator encodes some outputs itself (e.g. a 16-bit PNG)."""
    enc = getattr(gen, "encode_outputs", None)
    return enc(outs) if enc is not None else outs


def _identity(a):
    return a


class GeneratorSampling:
    """The shared per-sample generator loop (a mixin for :class:`~benchkit.runner.Producer` subclasses).

    Subclasses provide ``source_root()`` (folder the job payload's ``path`` is relative to),
    ``sample_generator()`` and, optionally, ``view()``, ``source_key()`` and ``reuse_decoded``.
    """

    #: keep the last decoded source image per thread (many samples per image, e.g. patches)
    reuse_decoded: bool = False

    # -- hooks --------------------------------------------------------------------------------------
    def source_root(self) -> Path:
        raise NotImplementedError

    def sample_generator(self):
        raise NotImplementedError

    def source_key(self, job: Job) -> str:
        """Key of the source image a job reads (names its cached auxiliary results); default: the job key."""
        return job.key

    def view(self, job: Job, img):
        """(function cutting this sample's view from any HxW[xC] array of the source image, extra manifest
        fields); raise BadInputError for an unusable image. Default: the whole image, ``size`` recorded."""
        m = self.sample_generator().min_input_size()
        if min(img.shape[:2]) < m:
            raise BadInputError(self.source_root() / job.payload["path"],
                                f"image is {img.shape[1]}x{img.shape[0]}, smaller than the {m} px this pipeline needs",
                                "upscale it or remove it from the input folder")
        return _identity, {"size": [int(img.shape[0]), int(img.shape[1])]}

    # -- aux passes ---------------------------------------------------------------------------------
    def aux_pass_objects(self) -> list:
        """Instances of the generator's auxiliary passes (made once; pickled with the producer to workers)."""
        passes = self.__dict__.get("_aux_pass_objects")
        if passes is None:
            from benchkit.embedded import cache_root
            from benchkit.generators.auxpass import make_aux_pass

            passes = [make_aux_pass(n) for n in self.sample_generator().aux_passes]
            self._aux_pass_objects = passes
            self._aux_cache_dir = str(cache_root())  # fixed here: worker processes may have another environment
        return passes

    def with_aux_spec(self, spec: dict) -> dict:
        """``spec`` plus ``aux_passes`` (name, version, model sha256, encoding) when the generator uses any;
        the fingerprint then covers them (a new model or pass version is a different dataset)."""
        passes = self.aux_pass_objects()
        if not passes:
            return spec
        from benchkit.config import fingerprint

        desc = [p.describe() for p in passes]
        return {**spec, "fingerprint": fingerprint({"f": spec["fingerprint"], "aux": desc}), "aux_passes": desc}

    def _aux_results(self, job: Job, img, source: dict):
        from benchkit.generators.auxpass import cached_result

        arrays, records = {}, []
        for p in self.aux_pass_objects():
            if getattr(self, "out_dir", None) is None:
                raise BenchkitError(f"{type(self).__name__}: auxiliary pass {p.name!r} needs the output folder; "
                                    f"run this producer through benchkit.runner.run_producer")
            arr, rec = cached_result(p, img, source["sha256"], self.out_dir, self.source_key(job),
                                     self.__dict__.get("_aux_cache_dir"))
            arrays[p.name] = arr
            records.append(rec)
        return arrays, records

    # -- the loop -----------------------------------------------------------------------------------
    def read(self, job: Job):
        """(float image, source record ``{"path", "sha256"}``) of the job's source image."""
        path = self.source_root() / job.payload["path"]
        if "error" in job.payload:
            raise BadInputError(path, job.payload["error"], "re-export the image or remove it from the source")
        img, sha = read_source(path, reuse=self.reuse_decoded)
        return img, {"path": job.payload["path"], "sha256": sha}

    def load(self, job: Job):
        """(float image, source record): prefetched by the single-worker runner on its I/O thread."""
        return self.read(job)

    def produce(self, job: Job, root_seed: int, loaded=None):
        from benchkit.generators.base import SampleContext
        from benchkit.seeding import rng_for, sample_entropy

        img, source = loaded if loaded is not None else self.read(job)
        cut, extra = self.view(job, img)
        aux, aux_records = self._aux_results(job, img, source)
        x = cut(img)
        ctx = SampleContext(job.key, int(x.shape[0]), int(x.shape[1]), {n: cut(a) for n, a in aux.items()})
        gen = self.sample_generator()
        params = gen.sample(rng_for(root_seed, job.key, "params"), ctx)
        fields = {"seed": {"root": root_seed, "entropy": sample_entropy(root_seed, job.key, "params")},
                  "sources": [source, *aux_records], **extra, "params": params.to_json()}
        outs = gen.apply(x, params, ctx)
        if hasattr(gen, "sample_meta"):  # typed per-sample fields (gen.metadata), e.g. HMB boxes
            fields["meta"] = gen.sample_meta(params, outs, ctx)
        return fields, finish_outputs(gen, outs)

    def produce_replay(self, job: Job, record: dict, root_seed: int):
        """Re-apply the RECORDED params to the verified source image and the verified cached auxiliary
        results (no sampling; auxiliary models are not run)."""
        from benchkit.generators.auxpass import load_recorded
        from benchkit.generators.base import SampleContext
        from benchkit.params import Params

        img, source = self.read(job)
        rec_src = record["sources"][0]
        if source["sha256"] != rec_src["sha256"]:
            raise BenchkitError(f"{self.source_root() / job.payload['path']}: source changed since the build "
                                f"(sha256 {source['sha256'][:12]} != recorded {rec_src['sha256'][:12]})")
        gen = self.sample_generator()
        aux = {r["aux"]: load_recorded(None, self.out_dir, r) for r in record["sources"][1:] if "aux" in r}
        missing = sorted(set(gen.aux_passes) - set(aux))
        if missing:
            raise BenchkitError(f"sample {record['key']!r}: the manifest lists no cached result of auxiliary "
                                f"pass(es) {missing} that {gen.name} needs; rebuild the dataset")
        cut, _extra = self.view(job, img)
        x = cut(img)
        ctx = SampleContext(job.key, int(x.shape[0]), int(x.shape[1]), {n: cut(a) for n, a in aux.items()})
        return {}, finish_outputs(gen, gen.apply(x, Params.from_json(record["params"]), ctx))


class GeneratorProducer(GeneratorSampling, Producer):
    """``benchkit degrade``: a pipeline (generator + config) applied to every image of a folder."""

    kind = "pipeline"

    def __init__(self, pipeline_name: str, generator, source_dir):
        self.pipeline_name = pipeline_name
        self.generator = generator
        self.source_dir = Path(source_dir).resolve()
        self.name = pipeline_name
        self.version = generator.version

    def source_root(self) -> Path:
        return self.source_dir

    def sample_generator(self):
        return self.generator

    def spec(self) -> dict:
        d = self.generator.describe()
        return self.with_aux_spec({
            "fingerprint": d["fingerprint"],
            "pipeline": {"name": self.pipeline_name, **d},
            "source": {"path": str(self.source_dir)},
            "roles": dict(self.generator.roles),
            "metadata": dict(self.generator.metadata),
        })

    def jobs(self) -> list[Job]:
        return image_jobs(self.source_dir)

    def adopt_recorded(self, old_spec: dict) -> str | None:
        """Resume a folder made by an older version of this generator (one it replays) at that version, when
        that reproduces the folder's fingerprint exactly (same pipeline, config and source)."""
        p = old_spec.get("pipeline") if isinstance(old_spec.get("pipeline"), dict) else {}
        gen = self.generator
        version = str(p.get("version", ""))
        if p.get("generator") != gen.name or version == gen.version or \
                version not in getattr(type(gen), "replay_versions", ()):
            return None
        self.generator, self.version = type(gen)(gen.config, version=version), version
        same = False
        try:
            same = self.spec()["fingerprint"] == old_spec.get("fingerprint")
        finally:
            if not same:  # not this folder's configuration (or spec() raised): back to the current version
                self.generator, self.version = gen, gen.version
        if not same:
            return None
        return (f"{gen.name}: this folder was made with generator version {version}; resuming it at that version "
                f"(new folders get version {gen.version})")

    def job_for(self, record: dict) -> Job:
        return Job(record["key"], {"path": record["sources"][0]["path"]})

    @classmethod
    def from_spec(cls, spec: dict, source_override=None) -> "GeneratorProducer":
        from benchkit.config import from_dict
        from benchkit.registry import resolve

        p = spec["pipeline"]
        gen_cls = resolve("generator", p["generator"])
        version = str(p["version"])
        known = (gen_cls.version, *getattr(gen_cls, "replay_versions", ()))
        if version not in known:
            raise BenchkitError(f"output was made by {p['generator']} v{version}, this benchkit runs "
                                f"v{', v'.join(known)}; replay needs the same generator version")
        cfg = from_dict(gen_cls.Config, p["config"], where="spec.json pipeline.config")
        gen = gen_cls(cfg) if version == gen_cls.version else gen_cls(cfg, version=version)
        return cls(p["name"], gen, source_override or spec["source"]["path"])


DegradeProducer = GeneratorProducer  # the name benchkit 0.1.0 used
