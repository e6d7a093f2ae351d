"""Output roles of a dataset: what methods restore, the ground truth, and auxiliary files.

``spec.json`` lists ``"roles": {output name: role}`` and ``"metadata": {field: type}`` (typed per-sample
fields of the manifest line's ``meta`` key). Roles:

- ``input``: what restoration methods receive (``lq``);
- ``target``: the ground truth metrics compare against (``gt``);
- ``aux``: side information (masks, PSFs, boxes, landmarks; ``psf``, ``hmb_weight``, ...).

Datasets written before roles existed (format 1, benchkit 0.1.0: the realesrgan and motion_blur
pipelines, blur-synth, gopro-enlarged, gopro-test) get them inferred: ``lq`` -> input, ``gt`` -> target,
any other output -> aux (:func:`infer_roles`).
"""

from __future__ import annotations

INPUT, TARGET, AUX = "input", "target", "aux"
ROLES = (INPUT, TARGET, AUX)

#: per-sample metadata field types a spec may declare
METADATA_TYPES = ("int", "float", "str", "bool", "list", "dict", "boxes", "landmarks")

_LEGACY = {"lq": INPUT, "gt": TARGET}


def infer_roles(output_names) -> dict[str, str]:
    """Roles for a spec without ``roles``: ``lq -> input``, ``gt -> target``, anything else ``aux``."""
    return {n: _LEGACY.get(n, AUX) for n in sorted(output_names)}


def check_roles(roles, where: str = "spec.json") -> dict[str, str]:
    """``roles`` validated (output name -> one of :data:`ROLES`); a clear error naming ``where`` otherwise."""
    from benchkit.errors import BenchkitError

    if not isinstance(roles, dict):
        raise BenchkitError(f"{where}: 'roles' must be a mapping output name -> role, got {type(roles).__name__}")
    bad = {k: v for k, v in roles.items() if v not in ROLES}
    if bad:
        raise BenchkitError(f"{where}: unknown role(s) {bad}; roles are {', '.join(ROLES)}")
    return dict(roles)


def legacy_outputs(spec: dict) -> set[str]:
    """The outputs a spec without ``roles`` (benchkit 0.1.0) was written with, from its producer:
    motion_blur pipelines and blur-synth -> lq, gt, psf; realesrgan pipelines and gopro builders -> lq, gt."""
    producer = spec.get("producer") or {}
    kind, name = producer.get("kind"), producer.get("name")
    if kind == "pipeline" and (spec.get("pipeline") or {}).get("generator") == "motion_blur":
        return {"lq", "gt", "psf"}
    if kind == "dataset" and name == "blur-synth":
        return {"lq", "gt", "psf"}
    return {"lq", "gt"}


def roles_of(spec: dict, output_names=()) -> dict:
    """{output name: role}: ``spec['roles']`` first, then any of ``output_names`` it does not declare,
    inferred (lq -> input, gt -> target, other -> aux). A spec without roles and no names given gets the
    outputs its producer wrote (:func:`legacy_outputs`)."""
    declared = check_roles(spec.get("roles") or {})
    names = list(output_names)
    if "roles" not in spec and not names:
        names = sorted(legacy_outputs(spec))
    out = {}
    for name in list(declared) + [n for n in names if n not in declared]:
        out[name] = declared.get(name) or _LEGACY.get(name, AUX)
    return out


def output_with_role(roles: dict, role: str):
    """The single output name with ``role`` (None if there is none); several is an error."""
    from benchkit.errors import BenchkitError

    names = [n for n, r in roles.items() if r == role]
    if len(names) > 1:
        raise BenchkitError(f"dataset declares several {role} outputs {names}; exactly one is supported")
    return names[0] if names else None


def outputs_with_role(spec: dict, role: str, output_names=()) -> list[str]:
    """Sorted output names of ``spec`` that have ``role``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return sorted(n for n, r in roles_of(spec, output_names).items() if r == role)


def metadata_of(spec: dict) -> dict[str, str]:
    """``{field: type}`` of the per-sample metadata a spec declares (``{}`` for 0.1.0 specs)."""
    return dict(spec.get("metadata") or {})
