"""Cell formatting and column ranking shared by the leaderboard writers (CSV/Markdown and HTML)."""

from __future__ import annotations

import math

FLOAT_FMT = "{:.4f}"
UP, DOWN = "\u2191", "\u2193"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        return FLOAT_FMT.format(v)
    return str(v)


def _ranks(rows, col, higher_is_better) -> tuple:
    """(best value, second-best value) of a column by its direction (distinct values; None if absent)."""
    vals = sorted({round(r[col], 4) for r in rows if isinstance(r.get(col), (int, float))},
                  reverse=higher_is_better)
    return (vals[0] if vals else None, vals[1] if len(vals) > 1 else None)
