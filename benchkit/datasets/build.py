"""Making dataset builders: ``make_builder(name, source, ["key=value", ...])``.

Used by ``benchkit build-dataset``, the benchmark harness and notebooks (none of them imports
``benchkit.commands``). Builders are resolved lazily through ``benchkit.registry.BUILDERS``.
"""

from __future__ import annotations


def apply_overrides(cfg: dict, overrides, name: str) -> dict:
    """``cfg`` (plain nested dict) with ``["a=1", "b.c=x"]`` applied (values parsed as YAML), in place."""
    import yaml

    from benchkit.errors import ConfigError

    for item in overrides:
        key, sep, val = str(item).partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {key}: {part!r} is not a config section of {name}")
            node = node[part]
        try:
            node[parts[-1]] = yaml.safe_load(val)
        except yaml.YAMLError as e:
            problem = " ".join(str(getattr(e, "problem", None) or e).split())
            raise ConfigError(f"--set {item}: the value is not plain YAML ({problem}); fix: write a number, "
                              "true/false, a string or a [list]") from None
    return cfg


def make_builder(name: str, source: str, overrides=()):
    """Instantiate builder ``name`` with config overrides ``["a=1", "b.c=x"]`` for ``source``
    (a folder, or ``embedded`` for builders with a built-in demo source). Unknown keys are errors."""
    import dataclasses

    from benchkit.config import from_dict, to_plain
    from benchkit.registry import resolve

    cls = resolve("builder", name)
    cfg = apply_overrides(to_plain(cls.Config()), overrides, name)
    config = from_dict(cls.Config, cfg, where=f"{name} config")
    assert dataclasses.is_dataclass(config)
    src = cls.resolve_source(source) if hasattr(cls, "resolve_source") else source
    return cls(config, src)
