"""Methods benchkit lists but cannot run: papers without released code or weights (``--methods all`` lists them).

:class:`UnreleasedMethod` entries have ``availability() == (False, reason)`` and a :meth:`restore` that raises
:class:`~benchkit.errors.UnavailableError` (benchkit never fakes their outputs). Every released model has an adapter:
:mod:`benchkit.methods.onestep` (OSEDiff, Hero-SR, S3Diff, InvSR, HAODiff), :mod:`benchkit.methods.sinsr`,
:mod:`benchkit.methods.cnn` (NAFNet, Restormer). Facts from REFERENCE.md section 9.
"""

from __future__ import annotations

from typing import ClassVar

from benchkit.methods.base import Method


class UnreleasedMethod(Method):
    """A paper whose code and weights are not released: listed for completeness, never run."""

    base_model: ClassVar[str] = ""

    def availability(self):
        return False, "paper only, no code or weights released"

    def restore(self, lq_batch, context, scale):
        from benchkit.errors import UnavailableError

        raise UnavailableError(f"{self.name}: paper only, no code or weights released")


# NAFNet and Restormer are runnable (spandrel adapters in benchkit.methods.cnn); re-exported so the
# registry entries ``benchkit.methods.external:NAFNet`` / ``:Restormer`` keep resolving.
from benchkit.methods.cnn import NAFNet, Restormer


class OSDD(UnreleasedMethod):
    name, task, scales, steps, base_model = "osdd", "restore", (1,), 1, "SD-2.1"


class FideDiff(UnreleasedMethod):
    name, task, scales, steps, base_model = "fidediff", "restore", (1,), 1, "SD-2.1"


class Face2Scene(UnreleasedMethod):
    name, task, scales, steps, base_model = "face2scene", "restore", (1,), 1, "SD-Turbo"
