"""Image decoding/encoding with documented conversions and per-file errors.

Conventions inside benchkit: RGB channel order, ``float32`` in ``[0, 1]`` for
processing, ``uint8`` for 8-bit outputs.

Input conversions (documented in README "Image inputs"):
- 8-bit: /255.  16-bit: /65535 (full precision kept in float32).
- gray (1 channel): replicated to 3 channels.
- RGBA / gray+alpha: alpha is dropped (the colour channels are used as stored, not
  composited), because restoration datasets are opaque photographs.
- float TIFFs (32/64-bit float samples) are used as stored when every value is finite and in ``[0, 1]``;
  NaN, infinity or values outside ``[0, 1]`` (e.g. 0-255 floats, HDR) are refused naming the file and the
  range found.
- Size limit: an image whose header claims more than ``max_pixels()`` pixels (width x height; default
  178,956,970 = Pillow's ``MAX_IMAGE_PIXELS``, about 0.5 GiB as 8-bit RGB, 2 GiB as float32; set
  ``BENCHKIT_MAX_PIXELS`` to change it, ``0`` for no limit) is refused from its header, before any pixel
  is decoded, so a decompression bomb costs nothing.
- Anything OpenCV cannot decode (truncated, zero-byte, not an image) raises
  :class:`BadInputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

from benchkit.errors import BadInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's MAX_IMAGE_PIXELS (1024 * 1024 * 1024 // 4 // 3)
MAX_PIXELS_ENV = "BENCHKIT_MAX_PIXELS"


def max_pixels() -> int:
    """Largest accepted width x height: ``$BENCHKIT_MAX_PIXELS`` (0 = no limit), else 178,956,970."""
    import os

    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw)) if raw.lower() not in ("nan", "inf", "-inf") else -1
    except ValueError:
        value = -1
    if value < 0:
        from benchkit.errors import ConfigError

        raise ConfigError(f"{MAX_PIXELS_ENV} = {raw!r}: must be an integer >= 0 (pixels; 0 = no limit); "
                          f"fix: e.g. {MAX_PIXELS_ENV}={DEFAULT_MAX_PIXELS}")
    return value


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def header_size(data: bytes):
    """``(width, height)`` from the encoded header (Pillow's lazy open: no pixel is decoded), or None when
    Pillow cannot read the header (OpenCV may still decode the file). A header beyond Pillow's own bomb
    limit gives ``(pixels, 1)`` with the pixel count Pillow reports. PNG: read from the IHDR chunk (the first
    one, bytes 16-24, big-endian) directly, what Pillow reads there too."""
    import io
    import re
    import warnings

    if len(data) >= 24 and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        return int(w), int(h)
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        return (int(m.group(1)), 1) if m else (2**62, 1)
    except Exception:  # noqa: BLE001 - any header Pillow cannot parse: leave the verdict to OpenCV
        return None


def check_size(data: bytes, path="<bytes>") -> None:
    """Refuse (BadInputError naming the file) an image whose header claims more than :func:`max_pixels`."""
    limit = max_pixels()
    if not limit:
        return
    size = header_size(data)
    if size is None:
        return
    w, h = size
    if w * h > limit:
        dims = f"{w} x {h} = {w * h:,} pixels" if h > 1 else f"{w:,} pixels"
        raise BadInputError(path, f"image too large: header claims {dims}, over the limit of {limit:,}",
                            f"downscale or tile the image, or raise the limit with {MAX_PIXELS_ENV}=N "
                            "(0 = no limit) if you have the memory")


def list_images(folder) -> list[Path]:
    """Image files directly in ``folder`` or below it, sorted by relative path (the '/'-joined names).

    What ``folder.rglob("*")`` + ``is_file()`` selects (links to files included, linked folders not entered,
    unreadable folders skipped), by ``os.scandir``, whose entries carry their types: no ``stat`` per regular
    file and no path object but the results (a resume lists every source each time)."""
    import os

    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(folder, "not a folder", "pass a folder of images")
    found = []  # (relative posix path, full path)
    stack = [(os.fspath(folder), "")]
    while stack:
        dirpath, prefix = stack.pop()
        try:
            it = os.scandir(dirpath)
        except PermissionError:
            continue
        with it:
            for e in it:
                if e.is_dir() and not e.is_symlink():
                    stack.append((e.path, prefix + e.name + "/"))
                elif os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file():
                    found.append((prefix + e.name, e.path))
    found.sort()
    return [Path(full) for _, full in found]


def decode_image(data: bytes, path="<bytes>"):
    """Decode encoded bytes to float32 RGB HxWx3 in [0, 1]."""
    import cv2
    import numpy as np

    if len(data) == 0:
        raise BadInputError(path, "file is empty (0 bytes)", "re-copy or delete the file")
    check_size(data, path)
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # e.g. OpenCV's own pixel limit on a header Pillow could not read
        msg = " ".join(str(e).split())[-200:]
        raise BadInputError(path, f"cannot decode image (OpenCV: {msg})",
                            "re-export the image as PNG, or remove it from the input folder") from None
    except MemoryError:
        raise BadInputError(path, "not enough memory to decode this image",
                            f"downscale it, or lower {MAX_PIXELS_ENV} so such files are refused early") from None
    if arr is None:
        raise BadInputError(path, "cannot decode image (corrupt, truncated or not an image)",
                            "re-export the image or remove it from the input folder")
    return to_float_rgb(arr, path)


def to_float_rgb(arr, path="<array>"):
    import cv2
    import numpy as np

    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    elif arr.dtype in (np.float32, np.float64):
        scale = 1.0
        _check_float_range(arr, path)
    else:
        raise BadInputError(path, f"unsupported pixel type {arr.dtype}", "convert to 8- or 16-bit PNG")
    if arr.ndim == 3 and arr.shape[2] in (1, 2):  # gray (+ alpha)
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise BadInputError(path, f"unsupported image shape {arr.shape}", "use a gray, RGB or RGBA image")
    # gray / BGR / BGRA -> RGB (alpha dropped) in one OpenCV pass for 8/16-bit and float32, then float32 and
    # the scale applied in place (same values as converting and dividing in numpy)
    if arr.dtype == np.float64:
        rgb = np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr[..., 2::-1]
    else:
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        rgb = cv2.cvtColor(arr, {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}[channels])
        if arr.dtype == np.uint8:  # float32(v) / float32(255) for each of the 256 levels: one table pass
            return cv2.LUT(rgb, _u8_levels())
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if scale != 1.0:
        rgb /= np.float32(scale)
    return rgb


_U8_TABLE = []  # [float32 (1, 256) table], built on first use (import benchkit stays light)


def _u8_levels():
    """``float32(v) / float32(255)`` for v = 0..255: the same quotients as converting and dividing."""
    if not _U8_TABLE:
        import numpy as np

        _U8_TABLE.append((np.arange(256, dtype=np.float32) / np.float32(255.0)).reshape(1, 256))
    return _U8_TABLE[0]


def _check_float_range(arr, path) -> None:
    """Float images must hold finite values in [0, 1] (see the module docstring)."""
    import numpy as np

    finite = np.isfinite(arr)
    if not finite.all():
        n = int(arr.size - np.count_nonzero(finite))
        raise BadInputError(path, f"float image holds {n} NaN or infinite value(s)",
                            "fix or mask those pixels, or save the image as 8- or 16-bit PNG")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise BadInputError(path, f"float image values span [{lo:.6g}, {hi:.6g}]; benchkit reads float images "
                            "as [0, 1]", "scale the values to [0, 1] (e.g. divide 0-255 data by 255) or save "
                            "as 8- or 16-bit PNG")


def read_image(path):
    """Read an image file as float32 RGB HxWx3 in [0, 1]; raises BadInputError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInputError(path, f"cannot read file ({e.strerror})", "check the path and permissions") from e
    return decode_image(data, path)


def read_image_bytes(path):
    """(float image, raw bytes) so callers can hash the source without reading twice."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInputError(path, f"cannot read file ({e.strerror})", "check the path and permissions") from e
    return decode_image(data, path), data


def to_uint8(img):
    """float [0,1] -> uint8 with round-half-to-even after clipping (like Real-ESRGAN's ``round()``)."""
    import numpy as np

    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(np.asarray(img, np.float32) * 255.0), 0, 255).astype(np.uint8)


def png_params(compression: int | None = None) -> list:
    """``cv2.imencode`` / ``cv2.imwrite`` params for benchkit's PNG settings: none (OpenCV's defaults) unless an
    explicit zlib ``compression`` level 0-9 is given."""
    import cv2

    return [] if compression is None else [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]


def encode_png(img, compression: int | None = None) -> bytes:
    """Encode an RGB image (uint8, or float in [0,1] which is rounded to 8 bit) as PNG bytes.

    Default settings: OpenCV's own PNG defaults, i.e. no params (what ``cv2.imwrite`` and BasicSR's
    ``imwrite`` use; OpenCV tunes them for speed). Measured on a 512x512 photograph: about 7-9 ms per encode
    vs about 22 ms at ``compression=3``, for files about 2% larger. Pixels are lossless either way; only the
    bytes (hence output sha256) depend on the settings. ``compression`` (0-9) pins a zlib level instead.
    """
    import cv2
    import numpy as np

    u8 = to_uint8(img)
    if u8.ndim == 3 and u8.shape[2] == 3:
        u8 = cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)
    elif u8.ndim == 3 and u8.shape[2] == 4:  # RGBA -> BGRA (alpha stays last; reversing all 4 gave ABGR)
        u8 = cv2.cvtColor(u8, cv2.COLOR_RGBA2BGRA)
    elif u8.ndim == 3:  # 1 channel (or gray + alpha): already in OpenCV's order
        u8 = np.ascontiguousarray(u8)
    ok, buf = cv2.imencode(".png", u8, png_params(compression))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_png(path, img, compression: int | None = None, fsync: bool = True) -> str:
    """Atomically write ``img`` as PNG (settings as :func:`encode_png`); returns the sha256 of the written bytes.

    ``fsync=False`` for files whose readers verify the recorded sha256 (see :func:`benchkit.fsio.atomic_write_bytes`).
    """
    from benchkit.fsio import atomic_write_bytes, sha256_bytes

    data = encode_png(img, compression)
    atomic_write_bytes(path, data, fsync=fsync)
    return sha256_bytes(data)
