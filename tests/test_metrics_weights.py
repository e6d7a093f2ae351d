"""Weight handling of learned metrics: unavailable reporting, checksums, checkpoint key checks.

No real learned-metric weights exist offline, so the loading path is exercised with
checkpoints this test builds itself (right keys/shapes, random values): the resulting score
is only checked to be finite, never for its value.
"""

import fractions
import json

import numpy as np
import pytest

from benchkit.errors import UnavailableError
from benchkit.metrics import get_metric, weights_report

import torch  # noqa: E402  (a dependency: its absence must fail, not skip)

LPIPS_FILES = ["hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth", "hub/checkpoints/alexnet-owt-7be5be79.pth"]
CHNS = [64, 192, 384, 256, 256]  # LPIPS AlexNet layer widths


def _fake_alexnet(path, gen):
    import torchvision

    sd = {}
    for k, v in torchvision.models.alexnet(weights=None).state_dict().items():
        # LPIPS uses only the conv features; the classifier gets stride-0 tensors (tiny file)
        sd[k] = torch.randn(v.shape, generator=gen) * 0.05 if k.startswith("features.") \
            else torch.zeros(1).expand(v.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)


def _fake_lpips_head(path, gen, rename=False, wrong_shape=False):
    head = {}
    for i, c in enumerate(CHNS):
        key = f"lin{i}.model.1.weight" if not rename else f"linear{i}.weight"
        head[key] = torch.rand(1, c + (1 if wrong_shape and i == 2 else 0), 1, 1, generator=gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head, path)


@pytest.fixture
def fake_root(tmp_path):
    gen = torch.Generator().manual_seed(1234)
    _fake_alexnet(tmp_path / LPIPS_FILES[1], gen)
    _fake_lpips_head(tmp_path / LPIPS_FILES[0], gen)
    return tmp_path


def _img(seed, shape=(48, 64, 3)):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_unavailable_lists_exact_files(tmp_path):
    m = get_metric("lpips", weights_root=tmp_path)
    ok, why = m.availability()
    assert not ok
    for rel in LPIPS_FILES:
        assert str(tmp_path / rel) in why
    with pytest.raises(UnavailableError, match="LPIPS_v0.1_alex-df73285e.pth"):
        m.score(_img(0), _img(1))
    assert not list(tmp_path.rglob("*.pth"))  # nothing was downloaded or created


def test_checksum_mismatch_reported(fake_root):
    ok, why = get_metric("lpips", weights_root=fake_root).availability()
    assert not ok and "bad_checksum" in why and "df73285e" in why
    rows = {r["file"]: r["status"] for r in weights_report(fake_root) if r["name"] == "lpips"}
    assert rows == {LPIPS_FILES[0]: "bad_checksum", LPIPS_FILES[1]: "bad_checksum"}


def test_correct_keys_load_and_score_finite(fake_root):
    m = get_metric("lpips", weights_root=fake_root, verify_weights=False)
    assert m.availability() == (True, "")
    a, b = _img(0), _img(1)
    v = m.score(a, b)
    assert np.isfinite(v) and v > 0
    assert m.score(a, a) == pytest.approx(0.0, abs=1e-6)
    assert m.score_batch([a, b], [b, a]) == pytest.approx([v, m.score(b, a)], rel=1e-5)


@pytest.mark.parametrize("variant", ["rename", "wrong_shape"])
def test_wrong_checkpoint_rejected(fake_root, variant):
    from benchkit.metrics.pyiqa_backend import WeightsCheckError

    gen = torch.Generator().manual_seed(7)
    _fake_lpips_head(fake_root / LPIPS_FILES[0], gen, rename=variant == "rename",
                     wrong_shape=variant == "wrong_shape")
    m = get_metric("lpips", weights_root=fake_root, verify_weights=False)
    with pytest.raises(WeightsCheckError, match="unexpected key|shape mismatch") as e:
        m.score(_img(0), _img(1))
    assert "LPIPS_v0.1_alex-df73285e.pth" in str(e.value)


def test_pickled_objects_refused_unless_verified(fake_root):
    from benchkit.metrics.pyiqa_backend import WeightsCheckError

    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1), "extra": fractions.Fraction(1, 3)},
               fake_root / LPIPS_FILES[0])
    m = get_metric("lpips", weights_root=fake_root, verify_weights=False)
    with pytest.raises(WeightsCheckError, match="refusing to unpickle"):
        m.score(_img(0), _img(1))


def test_weights_status_cli(tmp_path, capsys):
    from benchkit.cli import main

    assert main(["weights", "status", "--weights-root", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights_root"] == str(tmp_path)
    by_name = {}
    for r in report["files"]:
        by_name.setdefault(r["name"], set()).add(r["status"])
    assert by_name["psnr"] == {"none"} and by_name["msswd"] == {"none"}
    assert by_name["lpips"] == {"missing"} and by_name["qalign"] == {"missing"}
    assert main(["weights", "status", "--weights-root", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "metric:lpips" in text and "UNAVAILABLE" in text and "provision niqe" in text


def test_fid_is_dataset_level_and_unavailable_without_inception(tmp_path):
    from benchkit.errors import BenchkitError

    m = get_metric("fid", weights_root=tmp_path)
    with pytest.raises(BenchkitError, match="dataset-level"):
        m.score(_img(0), _img(1))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UnavailableError, match="pt_inception-2015-12-05-6726825d.pth"):
        m.score_folders(tmp_path / "a", tmp_path / "b")
    with pytest.raises(BenchkitError, match="per-image"):
        get_metric("psnr").score_folders(tmp_path / "a", tmp_path / "b")


def test_demo_help_says_what_it_downloads(cli_env):
    from conftest import run_cli

    for args in (["demo", "--help"], ["--help"]):
        out = " ".join(run_cli(args, env=cli_env).stdout.split())
        assert "no downloads" not in out
        assert "basicsr==1.4.2" in out.replace("basicsr== 1.4.2", "basicsr==1.4.2")
