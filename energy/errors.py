"""Typed errors of the energy package (all subclass :class:`models.errors.SnnchipError`)."""

from __future__ import annotations

from models.errors import SnnchipError


class EnergyError(SnnchipError):
    """A bad energy request: unknown view, missing counters, rates that do not fit the net."""


class TechTableError(EnergyError):
    """A technology table cannot be used: missing field, negative energy, bad YAML (names the field)."""


class UnknownTableError(TechTableError):
    """No shipped technology table has that name (the message lists the known ones)."""
