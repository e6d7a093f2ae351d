"""Contract suites over every registry entry (benchkit.testing.contracts), and proof that they catch a
deliberately broken entry of each kind."""

import numpy as np
import pytest

from benchkit import registry
from benchkit.methods.base import Method
from benchkit.testing import contracts


@pytest.mark.parametrize("name", sorted(registry.GENERATORS))
def test_generator_contract(name):
    contracts.check_generator(name)


@pytest.mark.parametrize("name", sorted(registry.METHODS))
def test_method_contract(name, tmp_path):
    contracts.check_method(name, tmp_path)


@pytest.mark.parametrize("name", sorted(registry.METRICS))
def test_metric_contract(name, tmp_path):
    contracts.check_metric(name, tmp_path / "weights")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(registry.BUILDERS))
def test_builder_contract(name, tmp_path):
    contracts.check_builder(name, tmp_path)


def test_every_builder_has_smoke_settings():
    """A new builder must say how to build it tiny on the embedded source (or the suite cannot cover it)."""
    assert set(registry.BUILDERS) <= set(contracts.BUILDER_SMOKE)


# ---------------------------------------------------------------------------- broken entries


class WrongSize(Method):
    name = "wrongsize"

    def restore(self, inputs, contexts, scale):
        return [x[1:] for x in inputs]


class Unseeded(Method):
    name = "unseeded"

    def restore(self, inputs, contexts, scale):
        return [np.clip(x + np.random.default_rng().normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
                for x in inputs]


class Faker(Method):
    """Claims to be unavailable but still returns an image."""

    name = "faker"

    def availability(self):
        return False, "weights missing in the weights root (place them)"

    def restore(self, inputs, contexts, scale):
        return inputs


def _hidden_random_generator():
    from benchkit.generators.motion.pipeline import MotionBlurGenerator

    class HiddenRandom(MotionBlurGenerator):
        name = "hidden"

        def apply(self, img, params, ctx=None):
            out = contracts._call(super().apply, img, params, ctx=ctx)
            out["lq"] = np.clip(out["lq"].astype(np.int16) + np.random.randint(0, 2, out["lq"].shape), 0,
                                255).astype(np.uint8)
            return out

    return HiddenRandom


@pytest.mark.parametrize("cls,msg", [(WrongSize, "output shape"), (Unseeded, "same seed differ"),
                                     (Faker, "did not raise UnavailableError")])
def test_method_contract_catches_broken_entries(monkeypatch, tmp_path, cls, msg):
    monkeypatch.setitem(registry.METHODS, cls.name, f"{__name__}:{cls.__name__}")
    with pytest.raises(AssertionError, match=msg):
        contracts.check_method(cls.name, tmp_path)


def test_generator_contract_catches_hidden_randomness(monkeypatch):
    import sys

    mod = sys.modules[__name__]
    monkeypatch.setattr(mod, "HiddenRandom", _hidden_random_generator(), raising=False)
    monkeypatch.setitem(registry.GENERATORS, "hidden", f"{__name__}:HiddenRandom")
    with pytest.raises(AssertionError, match="numpy's global RNG"):
        contracts.check_generator("hidden")


def test_metric_contract_catches_fr_without_na(monkeypatch, tmp_path):
    from benchkit.metrics import pyiqa_backend

    monkeypatch.setattr(pyiqa_backend.PyiqaMetric, "score_requests",
                        lambda self, reqs: [0.0 for _ in reqs])
    with pytest.raises(AssertionError, match="without a target must be NA"):
        contracts.check_metric("psnr", tmp_path)
