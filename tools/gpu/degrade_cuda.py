"""Prepared GPU check for the Real-ESRGAN torch path (issue 15): run once on a lent CUDA machine, record what it prints.

    python tools/gpu/degrade_cuda.py --out degrade_cuda.json                # CUDA, batch 16 of 512x512
    python tools/gpu/degrade_cuda.py --device cpu --batch 2 --rounds 1 --out x.json   # the code path on a CPU

Reports img/s of ``apply_batch(impl="torch")`` with host (OpenCV) and device (torchvision / nvJPEG) JPEG, the share
of time in JPEG, the device JPEG against OpenCV at q 30/60/95, and the LQ against the CPU path (see
``benchkit.bench.degrade_cuda``). Every failure is recorded, never fatal. Last line: the JSON written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args(argv)
    from benchkit.bench._clock import machine
    from benchkit.bench.degrade_cuda import run, summary_lines

    res = run(a.device, batch=a.batch, rounds=a.rounds, size=a.size)
    res["machine"] = machine()
    for line in summary_lines(res):
        print(line)
    Path(a.out).write_text(json.dumps(res, sort_keys=True) + "\n")
    print(json.dumps(res, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
