"""benchkit.methods.checkout: locating, checking and importing a user's clone of official code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchkit.methods.checkout import Checkout, CheckoutError, env_var, git_commit, resolve_code_dir


def _clone(tmp_path, pkg="bk_fake_official"):
    root = tmp_path / "clone"
    (root / pkg).mkdir(parents=True)
    (root / pkg / "__init__.py").write_text("VALUE = 42\n")
    (root / pkg / "model.py").write_text("from . import VALUE\nclass Net:\n    size = VALUE\n")
    return root


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv(env_var("hao-diff"), raising=False)
    assert env_var("hao-diff") == "BENCHKIT_HAO_DIFF_CODE"
    assert resolve_code_dir("hao-diff", None, tmp_path) == ((tmp_path / "code").resolve(), "<weights>/code")
    monkeypatch.setenv("BENCHKIT_HAO_DIFF_CODE", str(tmp_path / "env"))
    assert resolve_code_dir("hao-diff", None, tmp_path)[0] == (tmp_path / "env").resolve()
    assert resolve_code_dir("hao-diff", str(tmp_path / "opt"), tmp_path)[0] == (tmp_path / "opt").resolve()
    assert resolve_code_dir("x", None, None) == (None, "unset")


def test_missing_folder_and_files_are_named(tmp_path):
    co = Checkout("m", tmp_path / "nope", ("a.py",), "owner/repo", "option code_dir")
    assert "does not exist" in co.problem() and "owner/repo" in co.problem()
    root = _clone(tmp_path)
    co = Checkout("m", root, ("bk_fake_official/model.py", "bk_fake_official/other.py"), "owner/repo")
    assert co.missing() == ["bk_fake_official/other.py"]
    assert "lacks bk_fake_official/other.py" in co.problem()
    with pytest.raises(CheckoutError, match="other.py"):
        co.import_module("bk_fake_official.model")
    assert co.status_row("method:m", "m")["status"] == "missing"


def test_import_from_clone_leaves_sys_path_clean(tmp_path):
    root = _clone(tmp_path, "bk_fake_official2")
    co = Checkout("m", root, ("bk_fake_official2/model.py",), "owner/repo")
    before = list(sys.path)
    mod = co.import_module("bk_fake_official2.model")
    assert mod.Net.size == 42 and sys.path == before
    with pytest.raises(CheckoutError, match="failed"):
        co.import_module("bk_fake_official2.absent")


def test_shadowing_module_is_refused(tmp_path):
    a = _clone(tmp_path / "a", "bk_fake_official3")
    b = _clone(tmp_path / "b", "bk_fake_official3")
    Checkout("m", a, (), "o/r").import_module("bk_fake_official3.model")
    with pytest.raises(CheckoutError, match="already imported"):
        Checkout("m", b, (), "o/r").import_module("bk_fake_official3.model")


def test_git_commit_read_without_subprocess(tmp_path):
    root = _clone(tmp_path)
    assert git_commit(root) is None
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "x"], check=True, env=env)
    sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert git_commit(root) == sha
    subprocess.run(["git", "-C", str(root), "pack-refs", "--all"], check=True, env=env)
    assert git_commit(root) == sha  # from packed-refs
    co = Checkout("m", root, (), "o/r")
    assert co.status_row("method:m", "m")["detail"] == f"commit {sha[:12]}"


def test_fingerprint_covers_code_and_extra_files(tmp_path):
    root = _clone(tmp_path, "bk_fp")
    co = Checkout("m", root, (), "o/r")
    a = co.fingerprint(["bk_fp/*.py"])
    assert len(a) == 16 and a == co.fingerprint(["bk_fp/*.py"])
    (root / "bk_fp" / "model.py").write_text("changed\n")
    assert co.fingerprint(["bk_fp/*.py"]) != a
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("x: 1\n")
    assert co.fingerprint(["bk_fp/*.py"], extra=[cfg]) != co.fingerprint(["bk_fp/*.py"])
    assert Checkout("m", tmp_path / "nope", (), "o/r").fingerprint(["*.py"]) is None
