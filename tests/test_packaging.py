"""Packaging: shipped pipelines/benchmarks are package data (an installed wheel runs them from any folder), the
git sha is recorded only from benchkit's own checkout, and the OpenCV in use is one 4.x build."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- package data

def test_pipelines_and_benchmarks_live_in_the_package():
    from benchkit import config
    from benchkit.harness.benchmark import benchmark_dirs, find_benchmark

    assert config.PIPELINES_DIR == REPO / "benchkit" / "pipelines"
    assert {"realesrgan_x1", "realesrgan_x4", "motion_blur"} <= set(config.available_pipelines())
    assert all(p.parent == config.PIPELINES_DIR for p in config.available_pipelines().values())
    assert benchmark_dirs()[-1] == REPO / "benchkit" / "benchmarks"
    assert find_benchmark("demo") == REPO / "benchkit" / "benchmarks" / "demo.yaml"
    assert not (REPO / "pipelines").exists() and not (REPO / "benchmarks").exists()
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*\n(#.*\n)*benchkit = \[.*"pipelines/\*\.yaml".*'
                     r'"benchmarks/\*\.yaml"', text)


def test_env_folders_come_first_and_yaml_paths_still_work(tmp_path, monkeypatch):
    from benchkit.config import find_pipeline, load_pipeline
    from benchkit.harness.benchmark import find_benchmark

    mine = tmp_path / "mine"
    mine.mkdir()
    shipped = find_pipeline("realesrgan_x1")
    (mine / "realesrgan_x1.yaml").write_text(shipped.read_text())  # same name: the env folder wins
    (mine / "extra.yaml").write_text(shipped.read_text().replace("name: realesrgan_x1", "name: extra"))
    monkeypatch.setenv("BENCHKIT_PIPELINES", str(mine))
    assert find_pipeline("realesrgan_x1") == mine / "realesrgan_x1.yaml"
    assert load_pipeline("extra")[0] == "extra"
    assert find_pipeline("motion_blur").parent.name == "pipelines"  # shipped ones still found
    assert find_pipeline(str(mine / "extra.yaml")) == mine / "extra.yaml"
    bdir = tmp_path / "benches"
    bdir.mkdir()
    (bdir / "mybench.yaml").write_text("name: mybench\n")
    monkeypatch.setenv("BENCHKIT_BENCHMARKS", str(bdir))
    assert find_benchmark("mybench") == bdir / "mybench.yaml"
    assert find_benchmark("demo").name == "demo.yaml"


@pytest.mark.slow
def test_built_wheel_lists_and_runs_pipelines_from_any_folder(tmp_path):
    """Build the wheel (offline), install it with --target, run the CLI with ONLY that on PYTHONPATH from an
    unrelated folder: the checkout is not importable, so the pipelines must come from the wheel."""
    src = tmp_path / "src"  # build from a copy: an in-tree build would leave build/ and *.egg-info here
    src.mkdir()
    shutil.copytree(REPO / "benchkit", src / "benchkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / f, src / f)
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_NO_INDEX"] = "1"  # offline
    r = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                       capture_output=True, text=True, env=env, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = wheels.glob("benchkit-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(whl).namelist())
    assert {"benchkit/pipelines/realesrgan_x1.yaml", "benchkit/benchmarks/demo.yaml"} <= names
    r = subprocess.run(pip + ["install", "--no-deps", "--target", str(target), str(whl)],
                       capture_output=True, text=True, env=env, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr

    run_env = dict(env, PYTHONPATH=str(target))

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "benchkit", *args], capture_output=True, text=True,
                           env=run_env, cwd=work)
        assert p.returncode == 0, f"benchkit {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p.stdout

    where = subprocess.run([sys.executable, "-c", "import benchkit; print(benchkit.__file__)"],
                           capture_output=True, text=True, env=run_env, cwd=work, check=True).stdout.strip()
    assert Path(where).is_relative_to(target), where  # the wheel, not the checkout
    out = cli("pipelines")
    assert re.search(r"^realesrgan_x1\s+realesrgan\b", out, re.M) and "motion_blur" in out, out

    from benchkit.images import write_png

    imgs = work / "in"
    imgs.mkdir()
    y, x = np.mgrid[0:64, 0:72].astype(np.float32) / 63  # realesrgan_x1 needs >= 54 px
    for i in range(2):
        write_png(imgs / f"im{i}.png", np.stack([x, y, (x + y + i / 2) % 1], -1))
    cli("degrade", "--pipeline", "realesrgan_x1", "--seed", "3", "--no-progress", "in", "out")
    assert sorted(p.name for p in (work / "out" / "lq").glob("*.png")) == ["im0.png", "im1.png"]
    assert (work / "out" / "spec.json").is_file() and (work / "out" / "manifest.jsonl").is_file()
    import json

    spec = json.loads((work / "out" / "spec.json").read_text())
    assert spec["format"] == 2
    res = subprocess.run([sys.executable, "-c", "from benchkit.harness.environment import git_sha; "
                          "print(git_sha())"], capture_output=True, text=True, env=run_env, cwd=work, check=True)
    assert res.stdout.strip() == "None"  # an installed copy records no sha
    assert not list(target.glob("pipelines")) and not list(target.glob("benchmarks"))  # only inside benchkit/


# ----------------------------------------------------------------------------- git sha

def test_git_sha_of_own_checkout():
    from benchkit.harness.environment import git_sha

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("this test needs git and a benchkit git checkout (it runs from the repository)")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    sha = git_sha()
    assert sha is not None and sha.split("+")[0] == head and re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", sha)


def _git_repo(root: Path, pyproject_name: str | None) -> Path:
    root.mkdir(parents=True)
    (root / "benchkit").mkdir()
    (root / "benchkit" / "__init__.py").write_text("")
    if pyproject_name is not None:
        (root / "pyproject.toml").write_text(f'[project]\nname = "{pyproject_name}"\nversion = "1"\n')
    g = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(g + ["init", "-q"], cwd=root, check=True)
    subprocess.run(g + ["add", "-A"], cwd=root, check=True)
    subprocess.run(g + ["commit", "-q", "-m", "x"], cwd=root, check=True)
    return root


@pytest.mark.parametrize("case", ["own-checkout", "other-project", "no-pyproject", "nested-in-other-repo",
                                  "no-git"])
def test_git_sha_only_from_benchkits_own_checkout(tmp_path, monkeypatch, case):
    """The package dir must sit in a git work tree whose top level holds benchkit's own pyproject."""
    from benchkit import config
    from benchkit.harness.environment import git_sha

    if case == "own-checkout":
        root = _git_repo(tmp_path / "r", "benchkit")
    elif case == "other-project":  # e.g. benchkit vendored/installed inside another project's repository
        root = _git_repo(tmp_path / "r", "someone-else")
    elif case == "no-pyproject":  # site-packages inside a git-tracked folder
        root = _git_repo(tmp_path / "r", None)
    elif case == "nested-in-other-repo":  # benchkit's pyproject, but the git top level is a parent project's
        outer = _git_repo(tmp_path / "outer", "outer")
        root = outer / "vendor"
        (root / "benchkit").mkdir(parents=True)
        (root / "pyproject.toml").write_text('[project]\nname = "benchkit"\n')
    else:  # a source copy (sdist) outside any git repository
        root = tmp_path / "r"
        (root / "benchkit").mkdir(parents=True)
        (root / "pyproject.toml").write_text('[project]\nname = "benchkit"\n')
        monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(config, "REPO_ROOT", root)
    monkeypatch.setattr(config, "PACKAGE_DIR", root / "benchkit")
    sha = git_sha()
    if case == "own-checkout":
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        assert sha == head
        (root / "benchkit" / "__init__.py").write_text("x = 1\n")
        assert git_sha() == head + "+dirty"
    else:
        assert sha is None


# ----------------------------------------------------------------------------- OpenCV

def test_one_opencv_4x_in_use():
    """The cv2 that imports is 4.x, and every installed opencv* distribution is 4.x (constraints.txt)."""
    from importlib import metadata

    import cv2

    assert cv2.__version__.split(".")[0] == "4", cv2.__version__
    assert cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))[0]  # a working build, not a stub
    dists = {}
    for d in metadata.distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("opencv"):
            dists[name] = d.version
    assert dists, "no opencv distribution installed"
    assert all(v.split(".")[0] == "4" for v in dists.values()), dists
    deps = (REPO / "pyproject.toml").read_text().split("dependencies = [", 1)[1].split("]", 1)[0]
    assert re.findall(r'"(opencv[\w-]*)', deps) == ["opencv-python-headless"]  # benchkit names ONE
    cons = (REPO / "constraints.txt").read_text()
    for dist in ("opencv-python", "opencv-python-headless", "opencv-contrib-python"):
        assert re.search(rf"^{dist}\b.*<5", cons, re.M), dist
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()
