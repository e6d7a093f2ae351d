"""Compatibility names: ``benchkit degrade``'s producer now lives in :mod:`benchkit.builders.generator_producer`
(one generator-driven producer for ``degrade`` and ``blur-synth``). Import from there in new code."""

from __future__ import annotations

from benchkit.builders.generator_producer import DegradeProducer, GeneratorProducer, image_jobs

__all__ = ["DegradeProducer", "GeneratorProducer", "image_jobs"]
