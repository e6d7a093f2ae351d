"""Shared bench helpers: wall + CPU clocks and the machine description every bench JSON carries.

CPU time = user + sys of this process (all its threads) plus its finished children (``getrusage``), in
seconds. On a shared machine wall time depends on the neighbours' load; CPU time much less so, which
is why every bench reports both.
"""

from __future__ import annotations

import os
import platform
import time


def cpu_s() -> float:
    """User + sys seconds of this process (all threads) and its waited-for children."""
    import resource

    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Clock:
    """``with Clock() as c: ...`` -> ``c.wall``, ``c.cpu`` (seconds)."""

    wall = cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), cpu_s()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._w
        self.cpu = cpu_s() - self._c
        return False


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """CPU model, core counts, OS, Python and the versions of the libraries the benches time."""
    import importlib.metadata as md

    libs = {}
    for dist in ("numpy", "scipy", "opencv-python-headless", "opencv-python", "torch", "pyiqa", "basicsr-fixed",
                 "basicsr"):
        try:
            libs[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    from benchkit import __version__

    return {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": usable,
            "platform": platform.platform(), "python": platform.python_version(), "libraries": libs,
            "benchkit": __version__, "loadavg_1_5_15": load}
