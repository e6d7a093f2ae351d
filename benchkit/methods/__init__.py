"""Restoration methods benchmarked by ``benchkit evaluate``.

Every method subclasses :class:`benchkit.methods.base.Method` and is registered lazily in
``benchkit.registry.METHODS`` (name -> "module:Object"). ``benchkit.methods.classical`` and
``benchkit.methods.deconv`` hold the weight-free CPU baselines; ``benchkit.methods.external``
lists the papers' models, known to benchkit but not runnable here (their availability says why).
"""


def method_weight_rows(root) -> list[dict]:
    """Rows for :func:`benchkit.metrics.weights.weights_report`: every registered method's weight files.

    Methods look for their files in ``<weights root>/methods/<name>/`` (what ``benchkit evaluate`` passes).
    Weight-free methods get one row with status 'none'; released-paper-only methods one row 'unreleased'.
    """
    from pathlib import Path

    from benchkit.registry import METHODS, resolve

    rows = []
    for name in sorted(METHODS):
        m = resolve("method", name)()
        folder = Path(root) / "methods" / name
        m.setup(device="cpu", weights_dir=folder)
        folder = Path(m.weights_dir or folder)  # mode variants (osediff-official) share their family's folder
        files = tuple(getattr(m, "weight_files", ()) or ())
        if not files:
            ok, reason = m.availability()
            rows.append({"owner": f"method:{name}", "name": name, "file": "-", "path": str(folder),
                         "status": "none" if ok else "unreleased", "detail": reason})
            continue
        ok, reason = m.availability()
        present = True
        for f in files:
            p = folder / f
            present &= p.is_file()
            rows.append({"owner": f"method:{name}", "name": name, "file": f"methods/{folder.name}/{f}", "path": str(p),
                         "status": "unverified" if p.is_file() else "missing",
                         "detail": "" if p.is_file() else f"place {f} in {folder}"})
        base_dir = getattr(m, "base_dir", None)
        if callable(base_dir):  # one-step diffusion adapters: the local base-model folder
            from benchkit.methods.onestep.core import missing_base_parts

            b = base_dir()
            lack = missing_base_parts(b, m.base_parts)
            present &= not lack
            rows.append({"owner": f"method:{name}", "name": name, "file": f"base model {b.name}/", "path": str(b),
                         "status": "unverified" if not lack else "missing",
                         "detail": "" if not lack else f"place a diffusers-layout folder at {b} (lacks "
                                   f"{', '.join(lack)}; root: --base-models > $BENCHKIT_BASE_MODELS > "
                                   "<weights root>/base-models)"})
        checkout = getattr(m, "checkout", None)
        if callable(checkout):  # methods run from the user's clone of the official code (HAODiff, SinSR)
            row = checkout().status_row(f"method:{name}", name, getattr(m, "checkout_optional", ""))
            present &= row["status"] != "missing"
            rows.append(row)
        for f, what in getattr(m, "optional_weight_files", {}).items():  # e.g. OSEDiff's DAPE tagger
            p = folder / f
            rows.append({"owner": f"method:{name}", "name": name, "file": f"methods/{folder.name}/{f}", "path": str(p),
                         "status": "unverified" if p.is_file() else "optional",
                         "detail": "" if p.is_file() else f"optional ({what}): place {f} in {folder}"})
        if present and not ok:  # files are there but the method still cannot run (e.g. adapter pending)
            rows.append({"owner": f"method:{name}", "name": name, "file": "-", "path": str(folder),
                         "status": "unavailable", "detail": reason})
    return rows
