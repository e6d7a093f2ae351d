"""People photos that ship inside installed wheels (the embedded HMB demo source)."""

from __future__ import annotations

from pathlib import Path

# name -> (importable package, path inside it, licence)
EMBEDDED_PEOPLE = {
    "astronaut": ("skimage", "data/astronaut.png", "public domain (NASA, Eileen Collins), scikit-image data"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                     "public domain (US Navy photo), matplotlib sample data"),
    "bus": ("ultralytics", "assets/bus.jpg", "ultralytics asset (AGPL-3.0 package)"),
    "zidane": ("ultralytics", "assets/zidane.jpg", "ultralytics asset (AGPL-3.0 package)"),
}


def materialize_people(cache_dir=None) -> Path:
    """Copy the embedded people photos (those whose package is installed) to ``<cache>/embedded/people``."""
    import importlib.util

    from benchkit.embedded import cache_root
    from benchkit.fsio import atomic_write_bytes

    out = Path(cache_dir if cache_dir is not None else cache_root()) / "embedded" / "people"
    for name, (pkg, rel, _lic) in EMBEDDED_PEOPLE.items():
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.origin:
            continue
        src = Path(spec.origin).parent / rel
        if not src.is_file():
            continue
        dest = out / f"{name}{src.suffix}"
        data = src.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            atomic_write_bytes(dest, data, fsync=False)
    return out
