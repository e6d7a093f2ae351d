"""benchkit pipelines: list the pipeline configs."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("pipelines", help="list degradation pipelines (shipped ones and $BENCHKIT_PIPELINES folders)")
    p.set_defaults(func=run)


def run(args) -> int:
    from benchkit.config import available_pipelines, load_yaml

    for name, path in available_pipelines().items():
        block = load_yaml(path) or {}
        print(f"{name:28s} {block.get('generator', '?'):12s} {block.get('description', '')}")
    return 0
