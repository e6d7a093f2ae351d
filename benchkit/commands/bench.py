"""benchkit bench NAME: performance benchmarks (ratios against a reference run in the same process).

Convention: a bench function ``run(args) -> dict`` prints human-readable figures as it goes;
this command then prints, as its LAST line, one JSON object with the same figures, plus ``date`` (UTC),
``machine`` (CPU model, core count, library versions: ``benchkit.bench._clock.machine``) and the whole
bench's own ``bench_wall_s`` / ``bench_cpu_s``. ``python -m benchkit.bench.readme`` rewrites the README's performance
section from such lines.
"""

from __future__ import annotations


def register(sub):
    from benchkit.registry import BENCHES

    p = sub.add_parser("bench", help="performance benchmarks (last line: JSON)",
                       description="Benchmarks: " + ", ".join(sorted(BENCHES)))
    p.add_argument("name", help="one of: " + ", ".join(sorted(BENCHES)))
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    p.add_argument("--n", type=int, default=None, help="override the number of items")
    p.add_argument("--methods", default=None, help="comma-separated subset (benches over methods: adapters)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from datetime import datetime, timezone

    from benchkit.bench._clock import Clock, machine
    from benchkit.registry import resolve

    fn = resolve("bench", args.name)
    with Clock() as clock:
        result = fn(args)
    result.setdefault("date", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    result.setdefault("machine", machine())
    result.setdefault("bench_wall_s", round(clock.wall, 3))
    result.setdefault("bench_cpu_s", round(clock.cpu, 3))
    print(json.dumps(result, sort_keys=True))
    return 0
