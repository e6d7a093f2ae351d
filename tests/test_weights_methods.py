"""`benchkit weights status` lists method weight files and code checkouts, and never calls a method ready while one is missing."""

import json

from conftest import run_cli


def test_weights_status_lists_methods(tmp_path, cli_env):
    out = run_cli(["weights", "status", "--weights-root", str(tmp_path), "--json"], env=cli_env).stdout
    rows = json.loads(out)["files"]
    by = {}
    for r in rows:
        by.setdefault(r["owner"], []).append(r)
    assert by["method:identity"][0]["status"] == "none"
    assert by["method:osdd"][0]["status"] == "unreleased"
    rows_sinsr = by["method:sinsr"]
    assert {r["status"] for r in rows_sinsr} == {"missing"}
    assert {r["file"] for r in rows_sinsr} >= {"methods/sinsr/SinSR_v1.pth", "methods/sinsr/autoencoder_vq_f4.pth",
                                               "code checkout (wyf0912/SinSR)"}
    # place the weight files: still not ready, because the official code checkout is missing
    (tmp_path / "methods" / "sinsr").mkdir(parents=True)
    for r in rows_sinsr:
        if r["file"].startswith("methods/"):
            (tmp_path / r["file"]).write_bytes(b"x")
    rows = json.loads(run_cli(["weights", "status", "--weights-root", str(tmp_path), "--json"], env=cli_env).stdout)
    statuses = {r["file"]: r["status"] for r in rows["files"] if r["owner"] == "method:sinsr"}
    assert statuses["methods/sinsr/SinSR_v1.pth"] == "unverified"
    assert statuses["code checkout (wyf0912/SinSR)"] == "missing"
    human = run_cli(["weights", "status", "--weights-root", str(tmp_path)], env=cli_env).stdout
    assert "method:sinsr" in human and "UNAVAILABLE" in human.split("method:sinsr")[1].splitlines()[0]
