"""Five-point similarity alignment to the ArcFace template (insightface ``utils/face_align.py`` recipe).

Landmark order (image coordinates, x right, y down): left eye, right eye, nose tip, left mouth corner,
right mouth corner, where "left" is the image's left (the subject's right eye). The transform is the
least-squares similarity (rotation, uniform scale, translation; no reflection) of Umeyama (1991) mapping
the landmarks onto :data:`ARCFACE_DST` (112x112 px); the crop is ``cv2.warpAffine`` with bilinear
interpolation and a constant 0 border, as insightface does.
"""

from __future__ import annotations

#: insightface's ``arcface_dst``: the five landmarks of the 112x112 ArcFace crop (px).
ARCFACE_DST = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655),
               (70.7299, 92.2041))
ARCFACE_SIZE = 112


def template(size: int = ARCFACE_SIZE):
    """The five template points (float64 5x2) for a ``size`` x ``size`` crop (insightface scales x for 128)."""
    import numpy as np

    dst = np.asarray(ARCFACE_DST, dtype=np.float64)
    if size % 112 == 0:
        return dst * (size / 112.0)
    if size % 128 == 0:  # insightface: ratio = size / 128, diff_x = 8 * ratio
        ratio = size / 128.0
        return dst * ratio + np.array([8.0 * ratio, 0.0])
    raise ValueError(f"ArcFace crop size must be a multiple of 112 or 128, got {size}")


def similarity_matrix(src, dst):
    """2x3 float64 similarity transform (least squares, Umeyama 1991) mapping ``src`` points onto ``dst``.

    ``src``/``dst``: Nx2 arrays (N >= 2). Returns ``M`` with ``dst ~= M[:, :2] @ src + M[:, 2]``.
    """
    import numpy as np

    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two matching Nx2 point sets (N >= 2), got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    n = src.shape[0]
    cov = d0.T @ s0 / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = (s0 ** 2).sum() / n
    if var_s <= 0:
        raise ValueError("landmarks are all at one point: no similarity transform")
    scale = float((sig * d).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def alignment_matrix(landmarks, size: int = ARCFACE_SIZE):
    """The 2x3 matrix taking image pixels to the ``size`` px ArcFace crop for five ``landmarks`` (5x2)."""
    import numpy as np

    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"need five finite (x, y) landmarks, got shape {lm.shape}")
    return similarity_matrix(lm, template(size))


def warp(img, matrix, size: int = ARCFACE_SIZE):
    """``img`` (HxWxC, any dtype OpenCV warps) warped by ``matrix`` into ``size`` x ``size`` (bilinear, 0 border)."""
    import cv2
    import numpy as np

    return cv2.warpAffine(np.ascontiguousarray(img), np.asarray(matrix, dtype=np.float64), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def align(img, landmarks, size: int = ARCFACE_SIZE):
    """The aligned ``size`` x ``size`` face crop of ``img`` for five ``landmarks`` (pixel coordinates)."""
    return warp(img, alignment_matrix(landmarks, size), size)
