"""Technology tables: energy per operation, per bit and per flit-hop, and static power.

A table is a YAML data file (``energy/tables/<name>.yaml`` or any user file) read into a
:class:`TechTable` (pydantic). Every number is a :class:`Figure` ``{value, basis, note}``:
``basis`` says whether it is quoted from a ``source``, ``derived`` by arithmetic on
quoted numbers, or an ``assumption`` of ours; reports print the basis next to the number.
Tables are the only home of energy numbers (STYLE.md: tables are data files).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import TechTableError, UnknownTableError

__all__ = ["Figure", "Curve", "TechTable", "load_table", "list_tables", "ENERGY_FIELDS"]


class Figure(BaseModel):
    """One number of a table: ``value`` (>= 0, in the unit the field name states), its basis and a note."""

    model_config = ConfigDict(extra="forbid")
    value: float = Field(ge=0, allow_inf_nan=False)
    basis: Literal["source", "derived", "assumption"]
    note: str = Field(min_length=1)


class Curve(BaseModel):
    """A quantity that depends on a size (bits of an adder, KiB of an SRAM macro): ``points``
    {size: value}, read by :meth:`at` with log-log interpolation between the two nearest sizes
    (the end segments extended beyond them), with its basis and a note."""

    model_config = ConfigDict(extra="forbid")
    points: dict[float, float] = Field(min_length=1)
    basis: Literal["source", "derived", "assumption"]
    note: str = Field(min_length=1)

    def at(self, size: float) -> tuple[float, str]:
        """(value at ``size``, how: ``exact`` / ``interpolated`` / ``extrapolated``).

        Between sizes a < s < b: v = v_a (s / a)^(ln(v_b / v_a) / ln(b / a))."""
        import math

        pts = sorted((float(k), float(v)) for k, v in self.points.items())
        s = float(size)
        for k, v in pts:
            if k == s:
                return v, "exact"
        if len(pts) == 1:
            return pts[0][1], "extrapolated"
        if s < pts[0][0]:
            (a, va), (b, vb), how = pts[0], pts[1], "extrapolated"
        elif s > pts[-1][0]:
            (a, va), (b, vb), how = pts[-2], pts[-1], "extrapolated"
        else:
            i = next(i for i in range(1, len(pts)) if pts[i][0] > s)
            (a, va), (b, vb), how = pts[i - 1], pts[i], "interpolated"
        slope = math.log(vb / va) / math.log(b / a) if va > 0 and vb > 0 else 0.0
        return va * (s / a) ** slope, how


class TechTable(BaseModel):
    """Energy of one technology.

    Fields (all :class:`Figure`; ``_pj`` = picojoules, ``_w`` = watts):

    * ``e_mac_pj`` -- one multiply-accumulate (a synaptic op on a real-valued input),
    * ``e_ac_pj`` -- one accumulate (a synaptic op on a spike),
    * ``e_neuron_update_pj`` -- one neuron state update (every neuron, every step),
    * ``e_spike_pj`` -- extra energy of an update that fires (Loihi's active - inactive),
    * ``e_psum_add_pj`` -- adding one partial sum into a soma,
    * ``e_sram_read_bit_pj`` / ``e_sram_write_bit_pj`` -- SRAM access per bit,
    * ``e_flit_hop_pj`` -- one flit crossing one router + link,
    * ``e_flit_inject_pj`` -- per flit, once (local delivery / injection),
    * ``e_interchip_bit_pj`` -- one bit over a chip-to-chip link,
    * ``static_power_per_core_w`` -- leakage of one core, powered for the run's duration.

    Optional, read by the hardware view when present (:class:`Curve`):

    * ``e_add_pj_by_bits`` -- an integer add by width: the hardware view charges an AC
      at the membrane width (accumulating into the membrane), a MAC as
      ``e_mult_pj_by_bits`` at the weight width plus that add;
    * ``e_sram_read_64b_pj_by_kib`` -- a 64-bit SRAM read by macro size (KiB): the
      hardware view reads weights and state at the core memory's size (``memory_bytes``);
    * ``noc_technology_nm`` -- the node the NoC energies were given for;
    * ``noc_unit`` -- ``flit`` (energy per flit-hop) or ``packet`` (per message-hop, as
      Loihi's figures: flit-hops x packets / flits);
    * ``partial_sums`` -- False for a chip that has no partial-sum events (Loihi): the
      hardware view charges no partial-sum adds.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = ""
    sources: dict[str, str] = Field(default_factory=dict)
    e_mac_pj: Figure
    e_ac_pj: Figure
    e_neuron_update_pj: Figure
    e_spike_pj: Figure
    e_psum_add_pj: Figure
    e_sram_read_bit_pj: Figure
    e_sram_write_bit_pj: Figure
    e_flit_hop_pj: Figure
    e_flit_inject_pj: Figure
    e_interchip_bit_pj: Figure
    static_power_per_core_w: Figure
    noc_breakdown_pj: dict[str, float] = Field(default_factory=dict)
    e_add_pj_by_bits: Curve | None = None
    e_mult_pj_by_bits: Curve | None = None
    e_sram_read_64b_pj_by_kib: Curve | None = None
    noc_technology_nm: Figure | None = None
    noc_unit: Literal["flit", "packet"] = "flit"
    partial_sums: bool = True
    calibration: str = ""

    def v(self, field: str) -> float:
        """The value of a figure, e.g. ``table.v("e_ac_pj")``."""
        return float(getattr(self, field).value)

    def label(self) -> str:
        return self.name


ENERGY_FIELDS = tuple(n for n, f in TechTable.model_fields.items() if f.annotation is Figure)

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _tables_dir():
    return resources.files("energy").joinpath("tables")


def list_tables() -> list[str]:
    """Names of the shipped tables, sorted."""
    return sorted(p.name[:-5] for p in _tables_dir().iterdir() if p.name.endswith(".yaml"))


def _from_data(data, where: str) -> TechTable:
    if not isinstance(data, dict):
        raise TechTableError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    try:
        return TechTable.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(map(str, e["loc"]))
        got = f" (got {e['input']!r})" if e["type"] != "missing" else ""
        raise TechTableError(f"{where}: {loc}: {e['msg']}{got}") from None


@lru_cache(maxsize=None)
def _load_shipped(name: str) -> TechTable:
    text = _tables_dir().joinpath(f"{name}.yaml").read_text()
    return _from_data(yaml.safe_load(text), f"{name}.yaml")


def load_table(spec) -> TechTable:
    """A :class:`TechTable` from a shipped name (``horowitz45-fp32``), a YAML/JSON path, a dict or a table."""
    if isinstance(spec, TechTable):
        return spec
    if isinstance(spec, dict):
        return _from_data(spec, "<dict>")
    if isinstance(spec, (str, os.PathLike)):
        s = str(spec)
        if s.endswith((".yaml", ".yml", ".json")) or os.sep in s:
            p = Path(s)
            if not p.exists():
                raise TechTableError(f"{p}: no such technology table file")
            try:
                data = yaml.safe_load(p.read_text())
            except yaml.YAMLError as err:
                raise TechTableError(f"{p}: not valid YAML ({str(err).splitlines()[0]})") from None
            return _from_data(data, p.name)
        if _NAME.match(s) and s in list_tables():
            return _load_shipped(s)
        raise UnknownTableError(f"unknown technology table {s!r}; known: {', '.join(list_tables())} "
                                f"(or give a .yaml file)")
    raise TechTableError(f"technology table must be a name, a file or a dict, got {type(spec).__name__}")
