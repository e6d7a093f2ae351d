"""ArcFace embeddings from a user-provided ONNX file, run with onnxruntime (no pickle, no ``onnx`` package).

Recipe (insightface ``model_zoo/arcface_onnx.py``): the face is aligned to the 112x112 template
(:mod:`benchkit.faces.align`), fed as RGB NCHW float32 normalised ``(x - mean) / std`` with pixel values
in [0, 255], and the output (512-D for ``w600k_r50.onnx``) is compared by cosine similarity.
Normalisation ``"auto"`` follows insightface: if the first 8 graph nodes contain both a ``Sub``/``_minus``
and a ``Mul``/``_mul`` node the model normalises itself (mean 0, std 1), otherwise mean = std = 127.5.
benchkit reads those node names straight from the ONNX protobuf bytes (a ~40-line wire-format reader).
"""

from __future__ import annotations

from pathlib import Path

NORMALIZATIONS = ("auto", "arcface", "raw")  # arcface: (x-127.5)/127.5; raw: x (0..255)


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf, start=0, end=None):
    """Yield (field number, wire type, value) of a protobuf message; length-delimited values as memoryview."""
    i, end = start, len(buf) if end is None else end
    while i < end:
        tag, i = _varint(buf, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 1:
            val, i = None, i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wt == 5:
            val, i = None, i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        yield num, wt, val


def first_node_names(path, limit: int = 8) -> list[tuple[str, str]]:
    """(name, op_type) of the first ``limit`` nodes of an ONNX model's graph (ModelProto.graph = 7,
    GraphProto.node = 1, NodeProto.name = 3, op_type = 4)."""
    buf = memoryview(Path(path).read_bytes())
    out = []
    for num, wt, val in _fields(buf):
        if num != 7 or wt != 2:
            continue
        for gnum, gwt, node in _fields(val):
            if gnum != 1 or gwt != 2:
                continue
            name = op = ""
            for nnum, nwt, v in _fields(node):
                if nnum == 3 and nwt == 2:
                    name = bytes(v).decode("utf-8", "replace")
                elif nnum == 4 and nwt == 2:
                    op = bytes(v).decode("utf-8", "replace")
            out.append((name, op))
            if len(out) >= limit:
                return out
    return out


def auto_normalization(path) -> tuple[float, float]:
    """insightface's rule: (mean, std) = (0, 1) if a Sub and a Mul node open the graph, else (127.5, 127.5)."""
    nodes = first_node_names(path, 8)
    sub = any(n.startswith(("Sub", "_minus")) for n, _ in nodes)
    mul = any(n.startswith(("Mul", "_mul")) for n, _ in nodes)
    return (0.0, 1.0) if sub and mul else (127.5, 127.5)


class ArcFace:
    """One ArcFace ONNX model. ``embed(crops)`` -> L2-normalised float64 (N, D) embeddings.

    ``crops``: aligned RGB faces, float arrays in [0, 1] (N x S x S x 3, S = the model's input size).
    """

    def __init__(self, path, normalization: str = "auto", providers=("CPUExecutionProvider",)):
        from benchkit.errors import BadInputError, UnavailableError

        self.path = Path(path)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if not self.path.is_file():
            raise UnavailableError(missing_arcface_message(self.path))
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise UnavailableError("ArcFace needs onnxruntime: pip install 'benchkit[faces]'") from e
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=list(providers))
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise BadInputError(self.path, f"not a loadable ONNX model ({type(e).__name__}: {e})",
                                "place an ArcFace ONNX file (e.g. insightface buffalo_l's w600k_r50.onnx)") from e
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise BadInputError(self.path, f"input shape {shape} is not N x 3 x S x S",
                                "use an ArcFace recognition model (square RGB input, e.g. 112x112)")
        self.input_size = int(shape[2])
        if normalization == "auto":
            self.mean, self.std = auto_normalization(self.path)
        else:
            self.mean, self.std = (127.5, 127.5) if normalization == "arcface" else (0.0, 1.0)
        self.normalization = normalization
        from benchkit.fsio import sha256_file

        self.sha256 = sha256_file(self.path)

    def describe(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "input_size": self.input_size,
                "mean": self.mean, "std": self.std, "normalization": self.normalization}

    def embed(self, crops):
        """L2-normalised embeddings (float64 N x D) of aligned RGB crops in [0, 1]."""
        import numpy as np

        x = np.asarray(crops, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"crops must be N x {self.input_size} x {self.input_size} x 3, got {x.shape}")
        blob = ((x * np.float32(255.0) - np.float32(self.mean)) / np.float32(self.std)).transpose(0, 3, 1, 2)
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(blob)})[0]
        emb = np.asarray(out, dtype=np.float64).reshape(len(x), -1)
        norm = np.linalg.norm(emb, axis=1, keepdims=True)
        if np.any(norm == 0) or not np.all(np.isfinite(emb)):
            raise ValueError(f"{self.path}: the model returned a zero or non-finite embedding")
        return emb / norm


def cosine(a, b) -> float:
    """Cosine similarity of two vectors."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def missing_arcface_message(path) -> str:
    return (f"ArcFace ONNX file not found at {path}: place an ArcFace recognition model there (e.g. "
            "`w600k_r50.onnx` from insightface's buffalo_l pack, or any ArcFace ONNX with a square RGB input)")
