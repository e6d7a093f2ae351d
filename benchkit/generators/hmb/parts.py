"""Sapiens body-part classes and HAODiff's six part groups (REFERENCE-wave2 section 2; HAODiff Sec. 3.1).

The 28 classes are in the official order of Sapiens' ``GOLIATH_CLASSES`` (``lite/demo/vis_seg.py``);
label ``i`` of a Sapiens label map is ``SAPIENS_CLASSES[i]``. ``GROUPS`` maps each of HAODiff's six groups
to the classes it takes; ``whole_body`` is every class but Background. Every non-background class appears in
``whole_body``; Apparel, Torso, Upper_Clothing and Lower_Clothing only there (the paper lists no limb for
them). The grouping is our reading of the paper ([inf] in the reference) and lives here as one table.
"""

from __future__ import annotations

SAPIENS_CLASSES: tuple[str, ...] = (
    "Background", "Apparel", "Face_Neck", "Hair", "Left_Foot", "Left_Hand", "Left_Lower_Arm",
    "Left_Lower_Leg", "Left_Shoe", "Left_Sock", "Left_Upper_Arm", "Left_Upper_Leg", "Lower_Clothing",
    "Right_Foot", "Right_Hand", "Right_Lower_Arm", "Right_Lower_Leg", "Right_Shoe", "Right_Sock",
    "Right_Upper_Arm", "Right_Upper_Leg", "Torso", "Upper_Clothing", "Lower_Lip", "Upper_Lip",
    "Lower_Teeth", "Upper_Teeth", "Tongue",
)

GROUPS: dict[str, tuple[str, ...]] = {
    "head": ("Face_Neck", "Hair", "Lower_Lip", "Upper_Lip", "Lower_Teeth", "Upper_Teeth", "Tongue"),
    "left_upper_limb": ("Left_Hand", "Left_Lower_Arm", "Left_Upper_Arm"),
    "right_upper_limb": ("Right_Hand", "Right_Lower_Arm", "Right_Upper_Arm"),
    "left_lower_limb": ("Left_Foot", "Left_Lower_Leg", "Left_Shoe", "Left_Sock", "Left_Upper_Leg"),
    "right_lower_limb": ("Right_Foot", "Right_Lower_Leg", "Right_Shoe", "Right_Sock", "Right_Upper_Leg"),
    "whole_body": SAPIENS_CLASSES[1:],
}

GROUP_NAMES: tuple[str, ...] = tuple(GROUPS)


def group_ids(group: str) -> tuple[int, ...]:
    """Sapiens label ids of ``group``."""
    if group not in GROUPS:
        raise ValueError(f"unknown part group {group!r}; one of {GROUP_NAMES}")
    return tuple(SAPIENS_CLASSES.index(c) for c in GROUPS[group])


def group_mask(labels, group: str):
    """uint8 0/1 mask of the pixels of ``labels`` (HxW Sapiens label map) in ``group``."""
    import numpy as np

    lut = np.zeros(256, np.uint8)
    lut[list(group_ids(group))] = 1
    return lut[np.asarray(labels, dtype=np.uint8)]


def group_pixel_counts(labels) -> dict[str, int]:
    """Pixels per group in ``labels`` (one histogram, no per-pixel Python loop)."""
    import numpy as np

    hist = np.bincount(np.asarray(labels, dtype=np.uint8).ravel(), minlength=256)
    return {g: int(hist[list(group_ids(g))].sum()) for g in GROUP_NAMES}
