"""NIQE with LIVE parameters provisioned from the registry (basicsr 1.4.2 sdist via pip download).

Needs access to the package registry (PyPI), as CI has. Published values: pyiqa
ResultsCalibra/calibration_summary.csv, rows 'niqe' (official MATLAB) and 'niqe(ours)'
(pyiqa); tolerance 6e-2 relative as in pyiqa's tests.
"""

from pathlib import Path

import numpy as np
import pytest

from benchkit.images import read_image
from benchkit.metrics import get_metric
from benchkit.metrics.weights import NIQE_FILE, check_file, niqe_mat_problem, provision_niqe

import pyiqa  # noqa: E402  (a dependency of the metrics engine: its absence must fail, not skip)
CALIB = Path(pyiqa.__file__).resolve().parents[1] / "ResultsCalibra"
IMAGES = ["I03", "I04", "I06", "I08", "I19"]
PYIQA_NIQE = [15.6538, 3.6549, 3.2342, 3.1921, 9.0722]
OFFICIAL_NIQE = [15.7536, 3.6549, 3.2355, 3.184, 8.6352]


@pytest.fixture(scope="module")
def niqe_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights-niqe")
    path = provision_niqe(root)
    assert path == root / NIQE_FILE
    return root


def test_provisioned_file_verified(niqe_root):
    assert niqe_mat_problem(niqe_root / NIQE_FILE) == ""
    assert check_file(niqe_root, NIQE_FILE)[0] == "ok"
    import scipy.io

    mat = scipy.io.loadmat(niqe_root / NIQE_FILE)
    assert mat["mu_prisparam"].shape == (1, 36) and mat["cov_prisparam"].shape == (36, 36)


def test_niqe_matches_calibration(niqe_root):
    m = get_metric("niqe", weights_root=niqe_root)
    assert m.availability() == (True, "")
    vals = m.score_batch([read_image(CALIB / "dist_dir" / f"{i}.bmp") for i in IMAGES])
    np.testing.assert_allclose(vals, PYIQA_NIQE, rtol=6e-2)
    np.testing.assert_allclose(vals, OFFICIAL_NIQE, rtol=6e-2)


def test_bad_niqe_file_is_reported(tmp_path):
    import scipy.io

    bad = tmp_path / NIQE_FILE
    bad.parent.mkdir(parents=True)
    scipy.io.savemat(bad, {"mu_prisparam": np.zeros((1, 18)), "cov_prisparam": np.eye(36)})
    status, detail = check_file(tmp_path, NIQE_FILE)
    assert status == "invalid" and "mu_prisparam" in detail
    ok, why = get_metric("niqe", weights_root=tmp_path).availability()
    assert not ok and "provision niqe" in why


def test_niqe_file_is_pinned_by_sha256(niqe_root, tmp_path, monkeypatch):
    """The provisioned .mat has the pinned sha256 (fixed header: same bytes on every run); a valid-looking
    file with other numbers is refused, and a download whose parameter file differs is never written."""
    import hashlib

    import scipy.io

    from benchkit.errors import BenchkitError
    from benchkit.metrics import weights

    assert hashlib.sha256((niqe_root / NIQE_FILE).read_bytes()).hexdigest() == weights.NIQE_SHA256
    mat = scipy.io.loadmat(niqe_root / NIQE_FILE)
    assert weights.niqe_mat_bytes(mat["mu_prisparam"], mat["cov_prisparam"]) == (niqe_root / NIQE_FILE).read_bytes()
    other = tmp_path / "other" / NIQE_FILE
    other.parent.mkdir(parents=True)
    other.write_bytes(weights.niqe_mat_bytes(mat["mu_prisparam"] * 1.01, mat["cov_prisparam"]))
    status, detail = check_file(tmp_path / "other", NIQE_FILE)
    assert status == "bad_checksum" and "pinned" in detail and "provision niqe" in detail
    assert check_file(tmp_path / "other", NIQE_FILE, verify=False)[0] == "unverified"
    ok, why = get_metric("niqe", weights_root=tmp_path / "other").availability()
    assert not ok and "provision niqe" in why
    monkeypatch.setattr(weights, "NIQE_MEMBER_SHA256", "0" * 64)
    with pytest.raises(BenchkitError, match="not the pinned"):
        provision_niqe(tmp_path / "refused")
    assert not (tmp_path / "refused" / NIQE_FILE).exists()


def test_niqe_file_written_by_0_1_0_still_verifies(niqe_root, tmp_path):
    """benchkit 0.1.0 wrote the same LIVE values with scipy's own (timestamped) header: the pin is on the
    values, so users' existing files stay valid."""
    import scipy.io

    from benchkit.metrics import weights

    mat = scipy.io.loadmat(niqe_root / NIQE_FILE)
    old = tmp_path / "old" / NIQE_FILE
    old.parent.mkdir(parents=True)
    scipy.io.savemat(str(old), {"mu_prisparam": mat["mu_prisparam"], "cov_prisparam": mat["cov_prisparam"]})
    assert old.read_bytes() != (niqe_root / NIQE_FILE).read_bytes()  # other header bytes
    assert weights.niqe_params_sha256(old) == weights.NIQE_PARAMS_SHA256
    assert check_file(tmp_path / "old", NIQE_FILE)[0] == "ok"
