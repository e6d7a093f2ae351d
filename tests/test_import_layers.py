"""The package's import graph (function-level imports included) follows the layering rule and has no
cycle; in particular the runner resolves producers through the registry (no runner -> degrade cycle)."""

from benchkit.testing.imports import cycles, import_graph, layer_violations


def test_no_layer_violation_and_no_cycle():
    g = import_graph()
    assert layer_violations(g) == []
    assert cycles(g) == []


def test_runner_imports_no_producer_module():
    g = import_graph()
    deps = set(g["benchkit.runner"])
    assert not any(d.startswith(("benchkit.degrade", "benchkit.builders", "benchkit.generators")) for d in deps), deps
