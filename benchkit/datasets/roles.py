"""Output roles of a dataset: what methods restore, the ground truth, and auxiliary files.

``spec.json`` lists ``"roles": {output name: role}``. Datasets written before roles existed (format 1,
benchkit 0.1.0) get them inferred: ``lq`` -> input, ``gt`` -> target, any other output -> aux.
"""

from __future__ import annotations

INPUT, TARGET, AUX = "input", "target", "aux"
ROLES = (INPUT, TARGET, AUX)


def roles_of(spec: dict, output_names=()) -> dict:
    """{output name: role} from ``spec['roles']``, else inferred from the names (0.1.0 datasets)."""
    from benchkit.errors import BenchkitError

    declared = dict(spec.get("roles") or {})
    bad = {k: v for k, v in declared.items() if v not in ROLES}
    if bad:
        raise BenchkitError(f"spec.json: unknown role(s) {bad}; roles are {', '.join(ROLES)}")
    out = {}
    for name in list(declared) + [n for n in output_names if n not in declared]:
        out[name] = declared.get(name) or (INPUT if name == "lq" else TARGET if name == "gt" else AUX)
    return out


def output_with_role(roles: dict, role: str):
    """The single output name with ``role`` (None if there is none); several is an error."""
    from benchkit.errors import BenchkitError

    names = [n for n, r in roles.items() if r == role]
    if len(names) > 1:
        raise BenchkitError(f"dataset declares several {role} outputs {names}; exactly one is supported")
    return names[0] if names else None
