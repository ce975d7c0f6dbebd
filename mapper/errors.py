"""The mapper's file error, in its own module so that the mapping file format
(:mod:`mapper.mapfile`), the mapping (:mod:`mapper.mapping`) and the weight-stationary
mapping (:mod:`mapper.stationary`) raise it without importing each other."""

from __future__ import annotations

from models.errors import SnnchipError

__all__ = ["MappingFileError"]


class MappingFileError(SnnchipError):
    """A mapping folder is missing, corrupt, or inconsistent with its chip."""
