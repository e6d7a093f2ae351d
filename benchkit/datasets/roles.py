"""Output roles of a dataset: what each per-sample output is for.

``spec.json`` holds ``"roles": {output name: role}`` and ``"metadata": {field: type}`` (typed per-sample
fields of the manifest line's ``meta`` key). Roles:

- ``input``: what restoration methods receive (``lq``);
- ``target``: the ground truth metrics compare against (``gt``);
- ``aux``: side information (masks, PSFs, boxes, landmarks; ``psf``, ``hmb_weight``, ...).

Datasets written before roles existed (benchkit 0.1.0, manifest format 1: realesrgan/motion_blur
pipelines, blur-synth, gopro-enlarged, gopro-test) get :func:`infer_roles`: ``lq -> input``,
``gt -> target``, anything else ``aux``. A plain folder of images is input-only (:data:`PLAIN_ROLES`).
"""

from __future__ import annotations

INPUT = "input"
TARGET = "target"
AUX = "aux"
ROLES = (INPUT, TARGET, AUX)

#: the roles of a plain image folder opened as a dataset (every image is an input)
PLAIN_ROLES = {"image": INPUT}

#: per-sample metadata field types a spec may declare
METADATA_TYPES = ("int", "float", "str", "bool", "list", "dict", "boxes", "landmarks")

_LEGACY = {"lq": INPUT, "gt": TARGET}


def infer_roles(output_names) -> dict[str, str]:
    """Roles for a spec without ``roles``: ``lq -> input``, ``gt -> target``, anything else ``aux``."""
    return {n: _LEGACY.get(n, AUX) for n in sorted(output_names)}


def check_roles(roles: dict, where: str = "spec.json") -> dict[str, str]:
    """``roles`` validated (str -> one of :data:`ROLES`); a clear error naming ``where`` otherwise."""
    from benchkit.errors import BenchkitError

    if not isinstance(roles, dict):
        raise BenchkitError(f"{where}: 'roles' must be a mapping output name -> role, got {type(roles).__name__}")
    bad = {k: v for k, v in roles.items() if v not in ROLES}
    if bad:
        raise BenchkitError(f"{where}: unknown role(s) {bad}; each output's role must be one of {', '.join(ROLES)}")
    return dict(roles)


def _recorded_outputs(spec: dict, records) -> set[str]:
    names: set[str] = set()
    for rec in records or ():
        names.update((rec.get("outputs") or {}).keys())
    return names


def roles_of(spec: dict, records=None) -> dict[str, str]:
    """``{output name: role}`` of a dataset.

    ``spec``: its spec.json; declared ``roles`` win. Otherwise (0.1.0 specs) the outputs are inferred
    from the producer: realesrgan pipelines -> lq, gt; motion_blur and blur-synth -> lq, gt, psf;
    gopro builders -> lq, gt; any names found in ``records`` (manifest lines) are added.
    """
    if "roles" in spec:
        return check_roles(spec["roles"])
    names = set(_recorded_outputs(spec, records))
    producer = spec.get("producer") or {}
    kind, name = producer.get("kind"), producer.get("name")
    if kind == "pipeline":
        gen = (spec.get("pipeline") or {}).get("generator")
        names |= {"lq", "gt", "psf"} if gen == "motion_blur" else {"lq", "gt"}
    elif kind == "dataset":
        names |= {"lq", "gt", "psf"} if name == "blur-synth" else {"lq", "gt"}
    else:
        names |= {"lq", "gt"}
    return infer_roles(names)


def metadata_of(spec: dict) -> dict[str, str]:
    """``{field: type}`` of the per-sample metadata a spec declares (``{}`` for 0.1.0 specs)."""
    return dict(spec.get("metadata") or {})


def outputs_with_role(spec: dict, role: str, records=None) -> list[str]:
    """Sorted output names of ``spec`` that have ``role``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return sorted(n for n, r in roles_of(spec, records).items() if r == role)
