"""benchkit export DATASET_DIR --format hf [--out DIR] [--overwrite]

Thin wrapper over :func:`benchkit.datasets.export.export_hf` (format, checks and safety rules there).
"""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("export", help="export a built dataset (Hugging Face datasets format)",
                       description="Export a benchkit output folder as a Hugging Face dataset (save_to_disk).")
    p.add_argument("dataset_dir")
    p.add_argument("--format", default="hf", choices=["hf"], help="hf: Hugging Face datasets save_to_disk")
    p.add_argument("--out", default=None, help="destination folder (default: DATASET_DIR-hf); must not overlap "
                   "the dataset or its source")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing destination folder that a previous benchkit export wrote")
    p.set_defaults(func=run)


def run(args) -> int:
    from benchkit.datasets.export import export_hf

    out, n = export_hf(args.dataset_dir, args.out, args.overwrite)
    print(f"exported {n} samples to {out} (Hugging Face datasets; load with datasets.load_from_disk({str(out)!r}))")
    return 0
