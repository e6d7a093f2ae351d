"""benchkit: reproducible degraded-dataset synthesis and restoration benchmarking.

Importing this package imports no heavy dependency (numpy, torch, cv2, pyiqa ... are imported inside the
functions that need them). Its one effect: ``OPENCV_IPP`` defaults to ``avx2`` (a value you set wins).
OpenCV's bundled Intel IPP picks its code path per CPU, and its float32 DFT rounds differently on AVX-512
CPUs than on AVX2 ones: without the pin, the Real-ESRGAN USM target of a dataset built on one machine could
differ by one 8-bit level in a pixel when replayed on another (measured on the 0.1.0 fixture: 1 pixel of
49,152 on an AVX-512 Xeon). IPP reads the variable lazily, so it must be set before the first OpenCV call.
"""

import os as _os

_os.environ.setdefault("OPENCV_IPP", "avx2")

__version__ = "0.1.0"

__all__ = ["__version__"]
