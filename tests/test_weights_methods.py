"""`benchkit weights status` lists method weight files, and never calls a pending adapter ready."""

import json

from conftest import run_cli


def _pending_adapter() -> str:
    """A registered adapter that is listed with its weight files but not implemented in this release."""
    from benchkit.methods.external import PendingAdapter
    from benchkit.registry import METHODS, resolve

    return next(n for n in sorted(METHODS) if issubclass(resolve("method", n), PendingAdapter))


def test_weights_status_lists_methods(tmp_path, cli_env):
    out = run_cli(["weights", "status", "--weights-root", str(tmp_path), "--json"], env=cli_env).stdout
    rows = json.loads(out)["files"]
    by = {}
    for r in rows:
        by.setdefault(r["owner"], []).append(r)
    assert by["method:identity"][0]["status"] == "none"
    assert by["method:osdd"][0]["status"] == "unreleased"
    pending = _pending_adapter()
    assert {r["status"] for r in by[f"method:{pending}"]} == {"missing"}
    # place the files: still not ready, because the adapter itself is not in this release
    d = tmp_path / "methods" / pending
    d.mkdir(parents=True)
    for r in by[f"method:{pending}"]:
        (tmp_path / r["file"]).write_bytes(b"x")
    rows = json.loads(run_cli(["weights", "status", "--weights-root", str(tmp_path), "--json"], env=cli_env).stdout)
    statuses = [r["status"] for r in rows["files"] if r["owner"] == f"method:{pending}"]
    assert "unavailable" in statuses and "missing" not in statuses
