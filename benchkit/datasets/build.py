"""Builders for the datasets service (temporary shim; replaced by the datasets-service move)."""

from benchkit.commands.build_dataset import make_builder  # noqa: F401
