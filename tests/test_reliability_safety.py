"""Issue 8 (data loss, escapes): export/--overwrite, benchkit's temporary files, safe names and contained
paths. Each case asserts the exit code or exception, a message naming the file/value and the fix, and that
every pre-existing byte outside the output folder is unchanged."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from benchkit.cli import main
from benchkit.errors import BenchkitError, ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "v0_1_0" / "realesrgan_x1"


def tree(root: Path, skip: Path | None = None) -> dict:
    """{relative path: sha256} of every file below ``root`` (``skip`` and what is below it left out)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if skip is not None and (p == skip or p.is_relative_to(skip)):
            continue
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def ds(tmp_path):
    d = tmp_path / "data" / "ds"
    shutil.copytree(FIXTURE, d)
    (tmp_path / "notes.txt").write_text("user file")
    return d


def _export(capsys, *args):
    rc = main(["export", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


# ----------------------------------------------------------------------------- export / --overwrite

@pytest.mark.parametrize("target", ["self", "parent", "grandparent", "inside"])
def test_export_overwrite_never_touches_the_dataset(ds, tmp_path, capsys, target):
    out = {"self": ds, "parent": ds.parent, "grandparent": tmp_path, "inside": ds / "hf"}[target]
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--format", "hf", "--out", out, "--overwrite")
    assert rc == 2
    assert f"--out {out} overlaps the dataset folder {ds}" in msg and "choose an --out outside it" in msg
    assert tree(tmp_path) == before


def test_export_refuses_source_folder(ds, tmp_path, capsys):
    spec = json.loads((ds / "spec.json").read_text())
    src = tmp_path / "src"
    src.mkdir()
    (src / "img0.png").write_bytes(b"user image")
    spec["source"] = {**(spec.get("source") or {}), "path": str(src)}
    (ds / "spec.json").write_text(json.dumps(spec))
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", src, "--overwrite")
    assert rc == 2 and f"overlaps the source folder {src}" in msg
    assert tree(tmp_path) == before


def test_export_overwrite_refuses_a_foreign_folder(ds, tmp_path, capsys):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", other, "--overwrite")
    assert rc == 2 and f"{other} exists and is not a benchkit export" in msg and "choose another --out" in msg
    assert tree(tmp_path) == before


def test_export_existing_needs_overwrite(ds, tmp_path, capsys):
    out = tmp_path / "hf"
    out.mkdir()
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", out)
    assert rc == 2 and f"{out} already exists; pass --overwrite" in msg
    assert tree(tmp_path) == before


def test_export_out_is_a_file(ds, tmp_path, capsys):
    f = tmp_path / "out.bin"
    f.write_bytes(b"x")
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", f, "--overwrite")
    assert rc == 2 and f"--out {f} exists and is not a folder" in msg
    assert tree(tmp_path) == before


def test_export_then_overwrite_own_export(ds, tmp_path, capsys):
    import datasets

    out = tmp_path / "hf"
    before = tree(tmp_path)
    assert _export(capsys, ds, "--out", out)[0] == 0
    assert (out / ".benchkit-export.json").is_file()
    assert tree(tmp_path, skip=out) == before
    rc, msg = _export(capsys, ds, "--out", out, "--overwrite")
    assert rc == 0 and "exported" in msg
    assert len(datasets.load_from_disk(str(out))) == len(json.loads("[" + ",".join(
        (ds / "manifest.jsonl").read_text().splitlines()) + "]"))
    assert tree(tmp_path, skip=out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".benchkit-tmp-")]


def _edit_manifest(ds, fn):
    lines = (ds / "manifest.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    fn(recs[0])
    (ds / "manifest.jsonl").write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in recs))


@pytest.mark.parametrize("bad", ["/etc/passwd", "../../notes.txt", "lq/../../../notes.txt"])
def test_export_refuses_escaping_manifest_paths(ds, tmp_path, capsys, bad):
    _edit_manifest(ds, lambda r: r["outputs"]["lq"].update(path=bad))
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", tmp_path / "hf")
    assert rc == 2 and "absolute or contains '..'" in msg and repr(bad) in msg and "rebuild the dataset" in msg
    assert tree(tmp_path) == before and not (tmp_path / "hf").exists()


def test_export_refuses_symlink_out_of_dataset(ds, tmp_path, capsys):
    (ds / "lq" / "link.png").symlink_to(tmp_path / "notes.txt")
    _edit_manifest(ds, lambda r: r["outputs"]["lq"].update(path="lq/link.png"))
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", tmp_path / "hf")
    assert rc == 2 and "outside" in msg and "rebuild the dataset" in msg
    assert tree(tmp_path) == before


def test_export_verifies_output_hashes(ds, tmp_path, capsys):
    victim = ds / "lq" / "img0.png"
    victim.write_bytes(victim.read_bytes() + b"\0")
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", tmp_path / "hf")
    assert rc == 2 and str(victim) in msg and "the manifest records" in msg and "rebuild the dataset" in msg
    assert tree(tmp_path) == before and not (tmp_path / "hf").exists()


def test_export_reports_missing_output(ds, tmp_path, capsys):
    victim = ds / "gt" / "img0.png"
    victim.unlink()
    before = tree(tmp_path)
    rc, msg = _export(capsys, ds, "--out", tmp_path / "hf")
    assert rc == 2 and str(victim) in msg and "is missing" in msg
    assert tree(tmp_path) == before


def test_export_command_is_a_thin_wrapper():
    import benchkit.commands.export as cmd

    src = Path(cmd.__file__).read_text()
    assert "datasets.Dataset" not in src and "from benchkit.datasets.export import export_hf" in src


# ----------------------------------------------------------------------------- temporary files

def test_tmp_names_are_benchkit_unique(tmp_path):
    from benchkit.fsio import atomic_write_bytes, is_tmp_name, tmp_name

    n = tmp_name("a.png")
    assert is_tmp_name(n) and n.endswith("-a.png") and n != tmp_name("a.png")
    atomic_write_bytes(tmp_path / "a.png", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_clean_tmp_skips_a_folder_without_spec(tmp_path):
    from benchkit.fsio import clean_tmp

    (tmp_path / "notes.tmp").write_text("user")
    (tmp_path / ".benchkit-tmp-1-ab-x.png").write_text("looks like ours")
    before = tree(tmp_path)
    assert clean_tmp(tmp_path) == 0
    assert tree(tmp_path) == before


def test_clean_tmp_removes_only_benchkit_names(tmp_path):
    from benchkit.fsio import clean_tmp

    (tmp_path / "spec.json").write_text("{}")
    (tmp_path / "lq").mkdir()
    (tmp_path / "lq" / "notes.tmp").write_text("user")
    (tmp_path / "lq" / ".benchkit-tmp-1-ab-x.png.q1").write_text("leftover")
    assert clean_tmp(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "lq").iterdir()) == ["notes.tmp"]


def test_clean_tmp_never_enters_a_nested_dataset(tmp_path):
    from benchkit.fsio import clean_tmp

    (tmp_path / "spec.json").write_text("{}")
    inner = tmp_path / "other"
    inner.mkdir()
    (inner / "spec.json").write_text("{}")
    (inner / ".benchkit-tmp-1-ab-y.png").write_text("theirs")
    assert clean_tmp(tmp_path) == 0 and (inner / ".benchkit-tmp-1-ab-y.png").exists()


def test_degrade_keeps_user_tmp_files_in_output_and_source(tmp_path, capsys):
    """A non-benchkit output folder holding user *.tmp files, with the source inside the output."""
    import cv2
    import numpy as np

    out = tmp_path / "out"
    src = out / "src"
    src.mkdir(parents=True)
    cv2.imwrite(str(src / "a.png"), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (out / "notes.tmp").write_text("user tmp in output")
    (src / "draft.tmp").write_text("user tmp in source")
    before = tree(tmp_path)
    for _ in range(2):  # the second run finds benchkit's spec.json and cleans benchkit's leftovers only
        (out / "lq").mkdir(exist_ok=True)
        (out / "lq" / ".benchkit-tmp-1-ab-a.png.x").write_bytes(b"killed writer")
        rc = main(["degrade", "--pipeline", "realesrgan_x1", "--no-progress", str(src), str(out)])
        assert rc == 0, capsys.readouterr()
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing pre-existing changed or deleted
    assert "lq/.benchkit-tmp-1-ab-a.png.x" not in after and (out / "spec.json").is_file()


# ----------------------------------------------------------------------------- safe names / contained

@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", ".hidden", "a..b", "", "a b", "x" * 200, "é"])
def test_safe_name_refuses(name):
    from benchkit.safety import safe_name

    with pytest.raises(ConfigError) as e:
        safe_name("dataset", name)
    msg = str(e.value)
    assert msg.startswith(f"dataset name {name!r}") and "letters, digits" in msg and "fix: rename it" in msg


@pytest.mark.parametrize("name", ["realesrgan_x1", "blur-synth", "gopro.v2", "A1"])
def test_safe_name_accepts(name):
    from benchkit.safety import safe_name

    assert safe_name("benchmark", name) == name


@pytest.mark.parametrize("key,ok", [("img0", True), ("seq/seg000001/a_n7", True), ("my photo (1)", True),
                                    ("\u00e9t\u00e9/x", True), ("../x", False), ("a//b", False), ("/abs", False),
                                    ("a/./b", False), ("a\\b", False), (".hidden", False), ("a\x01b", False),
                                    ("a:b", False)])
def test_safe_key(key, ok):
    from benchkit.safety import safe_key

    if ok:
        assert safe_key(key) == key
    else:
        with pytest.raises(ConfigError, match="sample key"):
            safe_key(key)


def test_contained(tmp_path):
    from benchkit.safety import contained

    assert contained(tmp_path, "a/b") == (tmp_path / "a" / "b").resolve()
    (tmp_path / "link").symlink_to("/")
    for bad in ("../x", "/etc", "link/etc"):
        with pytest.raises(ConfigError, match="outside"):
            contained(tmp_path, bad, "weights path")


def test_output_relpath_refuses_escaping_keys():
    from benchkit.runner import Producer

    with pytest.raises(ConfigError, match="sample key '../../x'"):
        Producer.output_relpath(None, "../../x", "lq", ".png")
    with pytest.raises(ConfigError, match="output name '../lq'"):
        Producer.output_relpath(None, "img0", "../lq", ".png")
    assert Producer.output_relpath(None, "a/b", "lq", ".png") == "lq/a/b.png"


def test_method_weight_path_stays_inside(tmp_path):
    from benchkit.methods.base import Method

    class M(Method):
        name = "m1"
        weight_files = ("../../../etc/passwd",)

        def restore(self, lq_batch, context, scale):
            return lq_batch

    m = M()
    m.setup(weights_dir=tmp_path / "methods" / "m1")
    with pytest.raises(ConfigError, match="outside"):
        m.availability()
    # a weight file linked in from shared storage is the user's choice: allowed (it is still loaded safely)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "model.pth").write_bytes(b"x")
    (tmp_path / "methods" / "m1").mkdir(parents=True)
    (tmp_path / "methods" / "m1" / "model.pth").symlink_to(tmp_path / "store" / "model.pth")
    M.weight_files = ("model.pth",)
    assert m.availability() == (True, "") and m.weight_path("model.pth").read_bytes() == b"x"


def test_method_name_must_be_safe(tmp_path):
    from benchkit.methods.base import Method

    class M(Method):
        name = "../evil"

        def restore(self, lq_batch, context, scale):
            return lq_batch

    with pytest.raises(ConfigError, match="method name '../evil'"):
        M().setup(weights_dir=tmp_path)


def _results(tmp_path, benchmark="demo", dataset="ds1"):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"benchmark": benchmark, "datasets": {dataset: {}},
                                                  "dataset_order": [dataset], "config": {}, "metrics": {},
                                                  "summary": [], "failures": [], "skipped": []}))
    return run


@pytest.mark.parametrize("bench", ["../../..", "/tmp/x", "a/b"])
def test_publish_refuses_unsafe_benchmark_name(tmp_path, capsys, bench):
    run = _results(tmp_path, benchmark=bench)
    before = tree(tmp_path)
    rc = main(["publish", "--run", str(run)])
    err = capsys.readouterr().err
    assert rc == 2 and str(run / "results.json") in err and f"benchmark name {bench!r}" in err
    assert tree(tmp_path) == before


def test_publish_refuses_unsafe_dataset_name(tmp_path, capsys):
    run = _results(tmp_path, dataset="../../escape")
    before = tree(tmp_path)
    rc = main(["publish", "--run", str(run), "--out", str(tmp_path / "lb")])
    err = capsys.readouterr().err
    assert rc == 2 and "dataset name '../../escape'" in err and "fix: rename it" in err
    assert tree(tmp_path) == before and not (tmp_path / "lb").exists()


def test_publish_cli_refuses_unsafe_benchmark_option(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    rc = main(["publish", "--benchmark", "../../.."])
    err = capsys.readouterr().err
    assert rc == 2 and "benchmark name '../../..'" in err
    assert tree(tmp_path) == before


def test_benchkit_import_stays_light_with_safety():
    import subprocess
    import sys

    code = "import benchkit.safety, sys; print(any(m in sys.modules for m in ('numpy', 'torch')))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(Path(__file__).parents[1])})
    assert p.stdout.strip() == "False", p.stderr


@pytest.mark.parametrize("command", ["replay", "export"])
def test_manifest_paths_are_checked_on_read(ds, tmp_path, capsys, command):
    _edit_manifest(ds, lambda r: r["outputs"]["gt"].update(path="../../notes.txt"))
    before = tree(tmp_path)
    rc = main([command, str(ds), *(["img0"] if command == "replay" else [])])
    msg = "".join(capsys.readouterr())
    assert rc == 2 and str(ds / "manifest.jsonl") in msg and "'../../notes.txt'" in msg
    assert "fix: rebuild the dataset" in msg
    assert tree(tmp_path) == before


def test_unsafe_source_name_fails_only_its_sample(tmp_path, capsys):
    import cv2
    import numpy as np

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    img = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(src / "ok.png"), img)
    cv2.imwrite(str(src / "my photo.png"), img)  # spaces are a normal file name: kept
    cv2.imwrite(str(src / "bad:name.png"), img)  # a reserved character: that sample alone fails
    before = tree(tmp_path)
    rc = main(["degrade", "--no-progress", str(src), str(out)])
    text = "".join(capsys.readouterr())
    assert rc == 3, text
    assert (out / "lq" / "ok.png").is_file() and (out / "lq" / "my photo.png").is_file()
    assert not (out / "lq" / "bad:name.png").exists()
    fails = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["key"] for f in fails] == ["bad:name"] and "sample key 'bad:name'" in fails[0]["error"]
    assert tree(tmp_path, skip=out) == before
