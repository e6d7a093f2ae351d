"""Faces: detection with five landmarks, ArcFace alignment and embeddings (InScene, the ``idscore`` metric).

Modules: :mod:`.align` (five-point similarity alignment to the 112x112 ArcFace template, pure numpy/OpenCV),
:mod:`.arcface` (a user-provided ArcFace ONNX file run with onnxruntime), :mod:`.detect` (mediapipe
face detection + face mesh from the wheel, or a user-supplied YOLOv8-face checkpoint through ultralytics).
Layer: below builders and metrics (both use it); imports nothing heavy at module level.
"""
