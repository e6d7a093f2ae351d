"""The import graph (including imports inside functions) follows the layers and has no cycle."""

from pathlib import Path

from benchkit.testing.imports import cycles, import_graph, layer_of, layer_violations


def test_package_follows_the_layers():
    g = import_graph()
    assert len(g) > 50
    assert layer_violations(g) == []


def test_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_module_has_a_layer():
    for mod in import_graph():
        layer_of(mod)  # raises for a module outside every layer


def _fake_package(tmp_path: Path, files: dict) -> Path:
    root = tmp_path / "benchkit"
    for rel, text in {"__init__.py": "", **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_checker_catches_upward_import_inside_a_function(tmp_path):
    root = _fake_package(tmp_path, {
        "ops/__init__.py": "",
        "ops/conv.py": "def f():\n    from benchkit.harness.evaluate import evaluate\n",
        "harness/__init__.py": "",
        "harness/evaluate.py": "import benchkit.ops.conv\n",
        "generators/__init__.py": "",
        "generators/g.py": "from ..metrics import base\n",
        "metrics/__init__.py": "",
        "metrics/base.py": "",
    })
    g = import_graph(root)
    v = layer_violations(g)
    assert any("benchkit.ops.conv (layer 0) imports benchkit.harness.evaluate (layer 3) at line 2" in x for x in v)
    assert any("benchkit.generators.g (layer 1) imports benchkit.metrics.base (layer 2)" in x for x in v)
    assert cycles(g) == [["benchkit.harness.evaluate", "benchkit.ops.conv"]]


def test_ops_may_not_import_foundation(tmp_path):
    root = _fake_package(tmp_path, {"ops/__init__.py": "", "ops/a.py": "from benchkit.images import read_image\n",
                                     "images.py": ""})
    assert layer_violations(import_graph(root)) == [
        "benchkit.ops.a (ops: pure math) imports benchkit.images at line 1"]


def test_runner_imports_no_producer_module():
    """The runner resolves producers through the registry (no runner -> degrade/builders cycle)."""
    deps = set(import_graph()["benchkit.runner"])
    assert not any(d.startswith(("benchkit.degrade", "benchkit.builders", "benchkit.generators")) for d in deps), deps
