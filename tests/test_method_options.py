"""Method options from the benchmark YAML (``method_options``) and the CLI (``--method-option NAME.KEY=VALUE``)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli


def test_parse_method_option():
    from benchkit.errors import ConfigError
    from benchkit.harness.benchmark import parse_method_option

    assert parse_method_option("osediff.mode=official") == ("osediff", "mode", "official")
    assert parse_method_option("unsharp.amount=2.5") == ("unsharp", "amount", 2.5)
    assert parse_method_option("hero-sr.latent_tile=64") == ("hero-sr", "latent_tile", 64)
    assert parse_method_option("sinsr.code_dir=/a/b=c") == ("sinsr", "code_dir", "/a/b=c")
    for bad in ("osediff=official", "mode=1", ".x=1", "osediff.mode", "a.b=[1"):
        with pytest.raises(ConfigError):
            parse_method_option(bad)


def _yaml(tmp_path, ds, extra=""):
    p = tmp_path / "b.yaml"
    p.write_text(f"name: mo\nmetrics: [psnr]\nprimary_metric: psnr\nmethods: [unsharp]\n{extra}"
                 f"datasets:\n  - {{name: toy, kind: folder, path: {ds}}}\n")
    return p


def test_yaml_method_options_are_validated(tmp_path):
    from benchkit.errors import ConfigError
    from benchkit.harness.benchmark import load_benchmark

    cfg, _ = load_benchmark(_yaml(tmp_path, tmp_path, "method_options: {unsharp: {amount: 2.0}}\n"))
    assert cfg.method_options == {"unsharp": {"amount": 2.0}}
    with pytest.raises(ConfigError, match="amout"):
        load_benchmark(_yaml(tmp_path, tmp_path, "method_options: {unsharp: {amout: 2.0}}\n"))
    with pytest.raises(ConfigError, match="unknown method 'unsharpp'.*unsharp"):
        load_benchmark(_yaml(tmp_path, tmp_path, "method_options: {unsharpp: {amount: 2.0}}\n"))


def test_options_reach_the_method_and_its_tag(tmp_path, cli_env):
    from benchkit.harness.toyset import write_toy_dataset

    ds = write_toy_dataset(tmp_path / "ds", "blur", n=2, size=32)
    bench = _yaml(tmp_path, ds, "method_options: {unsharp: {amount: 2.0}}\n")

    def tag_and_psnr(run, *extra):
        run_cli(["evaluate", "--benchmark", str(bench), "--run", str(tmp_path / run), "--no-progress", *extra],
                env=cli_env)
        idx = [json.loads(x) for x in (tmp_path / run / "outputs" / "toy" / "unsharp" / "index.jsonl")
               .read_text().splitlines()]
        res = json.loads((tmp_path / run / "results.json").read_text())
        return idx[0]["tag"], json.dumps(res["methods"]["unsharp"]["options"])

    tag_yaml, opts_yaml = tag_and_psnr("a")
    tag_cli, opts_cli = tag_and_psnr("b", "--method-option", "unsharp.amount=0.5")
    assert '"amount": 2.0' in opts_yaml and '"amount": 0.5' in opts_cli and tag_yaml != tag_cli
    bad = run_cli(["evaluate", "--benchmark", str(bench), "--run", str(tmp_path / "c"), "--no-progress",
                   "--method-option", "unsharp.nope=1"], env=cli_env, check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_option_values_of_the_wrong_type_are_refused_before_the_run():
    """A number option given text (``--method-option unsharp.amount=abc``) is a ConfigError naming the option,
    raised when options are checked (before any dataset or method work), not one failure per image."""
    import pytest

    from benchkit.harness.benchmark import check_method_options

    with pytest.raises(ValueError, match="option amount must be a number"):
        check_method_options("unsharp", {"amount": "abc"})
    with pytest.raises(ValueError, match="must be a number"):
        check_method_options("unsharp", {"sigma": True})
    check_method_options("unsharp", {"amount": 2, "sigma": 0.5})  # ints for floats are fine


def test_run_folder_is_checked_before_any_work_and_a_typo_leaves_none(tmp_path):
    import pytest

    from benchkit.errors import BenchkitError
    from benchkit.harness.evaluate import adhoc_benchmark, evaluate
    from benchkit.harness.toyset import write_toy_dataset

    write_toy_dataset(tmp_path / "ds", "blur", n=2, size=16)
    bench = adhoc_benchmark([str(tmp_path / "ds")], metrics=["psnr"])
    with pytest.raises(BenchkitError):
        evaluate(bench, run_dir=tmp_path / "typo", methods=["identit"], log=lambda *a: None)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BenchkitError, match="cannot write there"):
        evaluate(bench, run_dir=tmp_path / "afile" / "run", methods=["identity"], log=lambda *a: None)


def test_a_method_or_metric_named_but_unavailable_exits_3(tmp_path, cli_env):
    from benchkit.harness.toyset import write_toy_dataset
    from conftest import run_cli

    write_toy_dataset(tmp_path / "ds", "blur", n=2, size=16)
    base = ["evaluate", "--dataset", str(tmp_path / "ds"), "--weights-root", str(tmp_path / "nothing"),
            "--no-progress"]
    p = run_cli(base + ["--methods", "identity,nafnet", "--metrics", "psnr", "--run", str(tmp_path / "a")],
                env=cli_env, check=False)
    assert p.returncode == 3 and "requested method nafnet did not run" in p.stdout, (p.returncode, p.stdout)
    p = run_cli(base + ["--methods", "identity", "--metrics", "psnr,lpips", "--run", str(tmp_path / "b")],
                env=cli_env, check=False)
    assert p.returncode == 3 and "requested metric lpips did not run" in p.stdout, (p.returncode, p.stdout)
    p = run_cli(base + ["--methods", "identity", "--metrics", "psnr", "--run", str(tmp_path / "c")], env=cli_env)
    assert p.returncode == 0
