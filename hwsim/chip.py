"""The chip model: :class:`ChipConfig`, its presets, loading and overrides (its readable
description: :mod:`hwsim.chip_describe`).

``ChipConfig`` is the only home of hardware numbers (docs/design.md). A chip is a
2-D mesh of cores; a system is a ``chips_x`` x ``chips_y`` grid of such chips joined by
inter-chip links. Presets are YAML data files in ``hwsim/presets/``, never code branches;
every number in a preset is either cited (``sources``) or listed in ``assumptions``.

Core semantics the mapper and simulator rely on
------------------------------------------------
* A **crossbar** has ``axons`` rows (inputs) and ``neurons`` columns, each column feeding
  one soma. A core holds ``crossbars_per_core`` crossbars, i.e. up to that many mapper
  tiles, which share the core's ``memory_bytes`` (weights + neuron state), its routing
  table (``routing_entries``) and its processing elements (``pe_width`` columns per
  cycle). Hence ``neurons_per_core = neurons * crossbars_per_core`` and
  ``crossbar_cells_per_core = axons * neurons * crossbars_per_core``.
* Weights are signed ``weight_bits`` integers: ``weight_range = (-2**(b-1), 2**(b-1)-1)``;
  the membrane is a signed ``membrane_bits`` integer that saturates at
  ``membrane_range``; the leak is a fixed-point multiply with ``leak_frac_bits``
  fraction bits (exact rounding: ``models/reference.py``).
* Synapse memory (``synapse_memory``): ``dense`` stores every cell of a crossbar at
  ``weight_bits`` (``axons * neurons * weight_bits / 8`` bytes per weight matrix);
  ``sparse`` stores only the nonzero synapses of the tiles a core holds, each
  ``weight_bits + synapse_index_bits`` bits (Loihi's synaptic memory), so a core's weight
  bits = sum over its distinct weight matrices of nonzero synapses x (weight_bits +
  synapse_index_bits); ``axons`` and ``neurons`` are then fan-in and compartment limits.
* Axon types (``axon_types = k > 0``, TrueNorth): the crossbar is binary; every axon
  (row) has one of ``k`` types and every neuron (column) one signed ``weight_bits``
  weight per type, so synapse (row a, column n) weighs ``s[n, type(a)]`` when its bit is
  set. The mapper assigns the types (``mapper.axon_types``). A crossbar then stores
  ``axons * neurons`` bits plus ``neurons * axon_types * weight_bits``.
* Conv mapping (``conv_mapping``): ``unrolled`` gives each output neuron a column and
  copies kernels per patch (Tianjic); ``weight_stationary`` stores one copy of each
  kernel as a ``(C_in k k) x C_out`` matrix and streams the output positions through it
  one after another (ISAAC/PRIME-style crossbar accelerators; ``mapper.stationary``).
* Timing (docs/design.md): integrate cycles = events x ceil(used columns /
  ``pe_width``) + events x ``event_overhead_cycles``; fire cycles = ceil(neurons /
  ``pe_width``); a hop costs ``router_cycles + link_cycles``, a chip-to-chip hop
  ``interchip_cycles``; one step = max(busy, ``step_cycles`` if fixed) + ``barrier_cycles``.

Every loading or validation failure raises :class:`ChipConfigError` with a one-line
message naming the file and the dotted field path, e.g.
``tianjic.yaml: core.axons: Input should be greater than or equal to 1 (got 0)``.

Assumption convention: an entry of ``assumptions`` that concerns particular fields starts
with their dotted paths, comma separated, then ``": "``, e.g.
``"core.pe_width: 16 columns per cycle; not published"``. :meth:`ChipConfig.assumed_fields`
parses them and :func:`hwsim.chip_describe.describe` marks those fields.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models import neurons
from models.errors import SnnchipError

__all__ = [
    "ChipConfigError", "CoreConfig", "MeshConfig", "NocConfig", "TimingConfig", "ChipConfig",
    "NEURON_MODELS", "MODES", "SECTIONS", "load_chip", "list_presets", "parse_overrides",
]

NEURON_MODELS = neurons.NEURON_MODELS  # the table models.neurons
MODES = ("ANN", "SNN")
NeuronModel = Literal[NEURON_MODELS]
Mode = Literal["ANN", "SNN"]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_PRESET_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class ChipConfigError(SnnchipError):
    """A chip config cannot be loaded or is invalid: unknown preset, missing or malformed
    file, unknown field, or a value out of range. The message names file and field."""


def _f(default: Any = ..., *, unit: str = "", **kw) -> Any:
    """A Field carrying its unit (shown by :func:`hwsim.chip_describe.describe`)."""
    return Field(default, json_schema_extra={"unit": unit}, **kw)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_as_numbers(cls, data):
        """``true`` is not the number 1: a boolean given for a field that is not boolean is an error."""
        if isinstance(data, dict):
            for name, value in data.items():
                f = cls.model_fields.get(name)
                if isinstance(value, bool) and f is not None and f.annotation is not bool:
                    raise ValueError(f"{name}: expected a number or text, got the boolean {str(value).lower()}")
        return data


def _unique(values: tuple, what: str) -> tuple:
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        raise ValueError(f"{what} listed more than once: {', '.join(dup)}")
    return values


class CoreConfig(_Section):
    """One core: crossbars, number formats, processing width, memory and routing table."""

    axons: int = _f(unit="rows", ge=1, le=65536, description="crossbar rows (inputs per crossbar)")
    neurons: int = _f(unit="columns", ge=1, le=65536,
                      description="crossbar columns (output neurons per crossbar)")
    crossbars_per_core: int = _f(1, unit="crossbars", ge=1, le=64,
                                 description="crossbars (mapper tiles) one core holds")
    weight_bits: int = _f(unit="bits", ge=1, le=16, description="signed synaptic weight width")
    membrane_bits: int = _f(unit="bits", ge=2, le=32, description="signed, saturating membrane width")
    spike_payload_bits: int = _f(0, unit="bits", ge=0, le=16,
                                 description="payload per spike event; 0 = binary events")
    pe_width: int = _f(unit="columns/cycle", ge=1, le=65536,
                       description="crossbar columns processed per cycle")
    memory_bytes: int = _f(unit="bytes", ge=1, le=1 << 40,
                           description="per-core SRAM for weights and neuron state")
    routing_entries: int = _f(unit="entries", ge=1, le=1 << 24,
                              description="routing-table entries per core")
    neuron_models: tuple[NeuronModel, ...] = _f(min_length=1, description="supported neuron models")
    modes: tuple[Mode, ...] = _f(min_length=1,
                                 description="ANN = MAC on real-valued inputs, SNN = AC on spikes")
    max_fold: int = _f(1, unit="blocks", ge=1, le=4096,
                       description="output blocks of one layer a core may time-multiplex per step")
    leak_frac_bits: int = _f(unit="bits", ge=0, le=24,
                             description="fraction bits of the fixed-point leak multiply")
    event_overhead_cycles: int = _f(0, unit="cycles", ge=0, le=65536,
                                    description="fixed cycles per input event")
    state_bits_per_neuron: int | None = _f(
        None, unit="bits", ge=2, le=256,
        description="stored state per neuron; None = membrane_bits (CubaLIF extra is the simulator's)")
    synapse_memory: Literal["dense", "sparse"] = _f(
        "dense", description="dense = every crossbar cell stored at weight_bits; sparse = only the "
        "nonzero synapses a core holds, each weight_bits + synapse_index_bits (Loihi)")
    synapse_index_bits: int = _f(0, unit="bits", ge=0, le=32,
                                 description="sparse synapse memory: bits stored per synapse besides its weight")
    axon_types: int = _f(0, unit="types", ge=0, le=16,
                         description="0 = a weight per synapse; k = binary crossbar, each axon one of k types, "
                         "each neuron one signed weight per type (TrueNorth: 4)")
    conv_mapping: Literal["unrolled", "weight_stationary"] = _f(
        "unrolled", description="unrolled = a column per output neuron, kernels copied per patch (Tianjic); "
        "weight_stationary = one (C_in k k) x C_out kernel copy, output positions streamed in time (ISAAC)")

    @field_validator("neuron_models")
    @classmethod
    def _models_unique(cls, v):
        return _unique(v, "neuron model")

    @field_validator("modes")
    @classmethod
    def _modes_unique(cls, v):
        return _unique(v, "mode")

    @field_validator("state_bits_per_neuron")
    @classmethod
    def _state_holds_membrane(cls, v, info):
        mb = info.data.get("membrane_bits")
        if v is not None and mb is not None and v < mb:
            raise ValueError(f"must be at least membrane_bits ({mb}), got {v}")
        return v

    @field_validator("synapse_index_bits")
    @classmethod
    def _index_needs_sparse(cls, v, info):
        if v and info.data.get("synapse_memory") == "dense":
            raise ValueError(f"only meaningful with synapse_memory: sparse, got {v} with dense")
        return v

    @field_validator("axon_types")
    @classmethod
    def _types_fit_weights(cls, v, info):
        if v and info.data.get("axons") is not None and v > info.data["axons"]:
            raise ValueError(f"at most core.axons ({info.data['axons']}) axon types, got {v}")
        return v

    @property
    def neurons_per_core(self) -> int:
        return self.neurons * self.crossbars_per_core

    @property
    def crossbar_cells_per_core(self) -> int:
        return self.axons * self.neurons * self.crossbars_per_core

    @property
    def state_bits(self) -> int:
        """Stored state bits per neuron (``state_bits_per_neuron`` or ``membrane_bits``)."""
        return self.membrane_bits if self.state_bits_per_neuron is None else self.state_bits_per_neuron

    @property
    def weight_range(self) -> tuple[int, int]:
        """(min, max) of a signed two's-complement ``weight_bits`` integer."""
        return _signed_range(self.weight_bits)

    @property
    def membrane_range(self) -> tuple[int, int]:
        """(min, max) of the saturating signed ``membrane_bits`` membrane."""
        return _signed_range(self.membrane_bits)


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class MeshConfig(_Section):
    """Cores per chip (a width x height mesh) and the grid of chips in the system."""

    width: int = _f(unit="cores", ge=1, le=1024, description="cores per chip along x")
    height: int = _f(unit="cores", ge=1, le=1024, description="cores per chip along y")
    chips_x: int = _f(1, unit="chips", ge=1, le=1024, description="chips in the system along x")
    chips_y: int = _f(1, unit="chips", ge=1, le=1024, description="chips in the system along y")
    max_chips: int = _f(64, unit="chips", ge=1, le=65536,
                        description="chips the mapper may use when one is not enough")

    @field_validator("max_chips")
    @classmethod
    def _max_covers_grid(cls, v, info):
        cx, cy = info.data.get("chips_x"), info.data.get("chips_y")
        if cx is not None and cy is not None and v < cx * cy:
            raise ValueError(f"must be at least chips_x * chips_y = {cx * cy}, got {v}")
        return v


class NocConfig(_Section):
    """The network on chip and the chip-to-chip links."""

    topology: Literal["mesh2d"] = _f("mesh2d", description="network topology")
    routing: Literal["xy"] = _f("xy", description="dimension-order routing, x first")
    router_cycles: int = _f(unit="cycles", ge=1, le=10000, description="router latency per hop (ideal model)")
    link_cycles: int = _f(unit="cycles", ge=0, le=10000, description="link latency per hop")
    flit_bits: int = _f(unit="bits", ge=1, le=4096, description="flit (and link) width")
    multicast: Literal["unicast", "xy-tree"] = _f(
        "unicast", description="unicast = one copy per destination; xy-tree = fork along the XY tree")
    router_model: Literal["ideal", "wormhole"] = _f(
        "ideal", description="the step timing's NoC: ideal = hwsim/noc.py (unlimited buffers, no ejection limit; "
        "default, an idealisation); wormhole = hwsim/router.py (the router fields below; one network per step)")
    interchip_cycles: int = _f(unit="cycles", ge=1, le=1_000_000,
                               description="latency of one chip-to-chip hop")
    interchip_bits: int = _f(unit="bits/cycle", ge=1, le=4096,
                             description="chip-to-chip link width")
    # The router model (hwsim/router.py, issue 20). Defaults are the settings of BookSim2's
    # iq_router (Jiang et al., ISPASS 2013) the model is calibrated against
    # (hwsim/router_booksim.py): an assumption for every preset that does not set its own.
    # The idealised packet model (hwsim/noc.py) ignores them; it is the limit of deep
    # buffers, many VCs and light load.
    vcs: int = _f(1, unit="VCs", ge=1, le=16,
                  description="virtual channels per input port (assumption: BookSim2 num_vcs of configs A, B, D)")
    buffer_flits: int = _f(4, unit="flits", ge=1, le=4096,
                           description="input buffer per port and VC (assumption: BookSim2 vc_buf_size of config B)")
    routing_cycles: int = _f(0, unit="cycles", ge=0, le=1000,
                             description="route computation per head (assumption: BookSim2 routing_delay 0)")
    vc_alloc_cycles: int = _f(1, unit="cycles", ge=1, le=1000,
                              description="VC allocation per head (assumption: BookSim2 vc_alloc_delay 1)")
    sw_alloc_cycles: int = _f(1, unit="cycles", ge=1, le=1000,
                              description="switch allocation per flit (assumption: BookSim2 sw_alloc_delay 1)")
    switch_cycles: int = _f(1, unit="cycles", ge=0, le=1000,
                            description="switch traversal per flit (assumption: BookSim2 st_final_delay 1)")
    credit_cycles: int = _f(1, unit="cycles", ge=1, le=100_000,
                            description="credit processing before the credit crosses the link back "
                                        "(assumption: BookSim2 credit_delay 1)")
    inject_cycles: int = _f(2, unit="cycles", ge=0, le=100_000,
                            description="core -> router injection channel latency (calibrated: 2 reproduces "
                                        "BookSim2's zero-load latency, derived)")
    eject_cycles: int = _f(1, unit="cycles", ge=0, le=100_000,
                           description="router -> core ejection channel latency (assumption: BookSim2 channel 1)")
    inject_flits_per_cycle: int = _f(1, unit="flits/cycle", ge=1, le=16,
                                     description="injection port bandwidth (assumption: one flit-wide channel)")
    eject_flits_per_cycle: int = _f(1, unit="flits/cycle", ge=1, le=16,
                                    description="ejection port bandwidth (assumption: one flit-wide channel)")
    io_cycles: int = _f(1, unit="cycles", ge=0, le=100_000, description="I/O port -> node (0, 0) link latency, "
                        "wormhole model (assumption: one on-chip link; the mapper puts the port on chip (0, 0))")
    io_bits: int | None = _f(None, unit="bits/cycle", ge=1, le=4096,
                             description="I/O link width (None: flit_bits, one flit per cycle; assumption)")


class TimingConfig(_Section):
    """Clock and step structure."""

    clock_hz: float = _f(unit="Hz", gt=0, le=1e12, description="core and NoC clock")
    mode: Literal["sync", "pipelined"] = _f(
        "sync", description="sync = layer-serial within a step (exact reference semantics); "
        "pipelined = every core every step on the previous step's inputs")
    step_cycles: Union[Literal["dynamic"], int] = _f(
        "dynamic", unit="cycles",
        description="'dynamic' = a step ends when all work is done; an int = fixed phase length")
    barrier_cycles: int = _f(0, unit="cycles", ge=0, le=1 << 32,
                             description="synchronisation cost added to every step")

    @field_validator("step_cycles", mode="before")
    @classmethod
    def _step(cls, v):
        if v == "dynamic":
            return v
        if isinstance(v, str):
            try:
                v = int(v)
            except ValueError:
                raise ValueError(f"must be 'dynamic' or a positive integer, got {v!r}") from None
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= (1 << 40):
            raise ValueError(f"must be 'dynamic' or a positive integer, got {v!r}")
        return v


SECTIONS: dict[str, type[BaseModel]] = {
    "core": CoreConfig, "mesh": MeshConfig, "noc": NocConfig, "timing": TimingConfig,
}


class ChipConfig(BaseModel):
    """A complete chip/system description. Immutable; derive variants with :meth:`with_overrides`.

    Examples
    --------
    >>> chip = ChipConfig.preset("tianjic")
    >>> chip.total_cores, chip.crossbar_cells
    (156, 10223616)
    >>> chip.with_overrides({"core.axons": 128}).core.axons
    128
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="chip name")
    description: str = Field("", description="one-line summary")
    sources: tuple[str, ...] = Field((), description="citations of the published numbers")
    assumptions: tuple[str, ...] = Field((), description="every number not found in a source")
    overrides: tuple[str, ...] = Field((), description="fields changed from the base chip, as FIELD=VALUE")
    core: CoreConfig
    mesh: MeshConfig
    noc: NocConfig
    timing: TimingConfig

    # ----- derived, read-only ------------------------------------------------------------
    @property
    def cores_per_chip(self) -> int:
        return self.mesh.width * self.mesh.height

    @property
    def chips(self) -> int:
        """Chips in the system grid (``chips_x * chips_y``; the mapper may add up to max_chips)."""
        return self.mesh.chips_x * self.mesh.chips_y

    @property
    def total_cores(self) -> int:
        return self.cores_per_chip * self.chips

    @property
    def neurons_per_chip(self) -> int:
        return self.cores_per_chip * self.core.neurons_per_core

    @property
    def total_neurons(self) -> int:
        return self.total_cores * self.core.neurons_per_core

    @property
    def crossbar_cells_per_chip(self) -> int:
        return self.cores_per_chip * self.core.crossbar_cells_per_core

    @property
    def crossbar_cells(self) -> int:
        """Synapse cells of all crossbars of the whole system grid (total_cores x per-core)."""
        return self.total_cores * self.core.crossbar_cells_per_core

    @property
    def cycle_ns(self) -> float:
        """Clock period in nanoseconds."""
        return 1e9 / self.timing.clock_hz

    @property
    def step_ns(self) -> float | None:
        """Length of a fixed step (phase) in ns, or None when ``step_cycles`` is dynamic."""
        sc = self.timing.step_cycles
        return None if sc == "dynamic" else sc * self.cycle_ns

    @property
    def weight_range(self) -> tuple[int, int]:
        return self.core.weight_range

    @property
    def membrane_range(self) -> tuple[int, int]:
        return self.core.membrane_range

    def assumed_fields(self) -> set[str]:
        """Dotted field paths named at the start of an ``assumptions`` entry
        (``"all fields: ..."`` names every section field)."""
        out = set()
        for a in self.assumptions:
            head, sep, _ = a.partition(": ")
            if sep and head.strip() == "all fields":
                return {f"{s}.{f}" for s, cls in SECTIONS.items() for f in cls.model_fields}
            if sep:
                for p in head.split(","):
                    p = p.strip()
                    if _is_field_path(p):
                        out.add(p)
        return out

    # ----- loading -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "ChipConfig":
        """Validate ``data``; errors name ``source`` and the field path."""
        if not isinstance(data, Mapping):
            raise ChipConfigError(f"{source}: top level must be a mapping of fields, got "
                                  f"{type(data).__name__}")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as e:
            raise ChipConfigError(f"{source}: {_format_errors(e)}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "ChipConfig":
        """Load a ``.yaml``/``.yml`` (``yaml.safe_load``, duplicate keys rejected) or ``.json`` file."""
        path = Path(path)
        data = _read_mapping(path, str(path))
        if isinstance(data, Mapping) and "base" in data:
            return _from_base(data, path)
        return cls.from_dict(data, str(path))

    @classmethod
    def preset(cls, name: str) -> "ChipConfig":
        """A shipped preset by name (``list_presets()``)."""
        if not isinstance(name, str):
            raise ChipConfigError(f"chip preset name must be a string, got {name!r}")
        return _load_preset(name)

    # ----- deriving and saving -------------------------------------------------------------
    def with_overrides(self, overrides: Mapping[str, Any], source: str = "overrides",
                       name: str | None = None) -> "ChipConfig":
        """A new validated config with dotted-key overrides, e.g. ``{"core.axons": 128}``.

        A value that is a mapping is merged into the section (``{"core": {"axons": 128}}``).
        The new chip records each change in ``overrides`` (``core.axons=128``) and is named
        after them (``tianjic+core.axons=128``) unless ``name`` is given, so mappings and
        reports say which chip they used; ``describe`` marks the changed fields.
        """
        data = self.to_dict()
        changed = []
        for key, value in overrides.items():
            parts = str(key).split(".")
            node, path = data, []
            for part in parts[:-1]:
                path.append(part)
                if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                    raise ChipConfigError(f"{source}: {key}: unknown field {'.'.join(path)!r}"
                                          f"{_allowed_hint(path[:-1])}")
                node = node[part]
            leaf = parts[-1]
            if leaf not in node:
                raise ChipConfigError(f"{source}: {key}: unknown field{_allowed_hint(parts[:-1])}")
            if isinstance(value, Mapping) and isinstance(node[leaf], dict):
                _merge(node[leaf], value, source, parts)
                changed += [f"{key}.{k}={_override_text(v)}" for k, v in _flat(value)]
            else:
                node[leaf] = value
                if leaf not in ("name", "description", "sources", "assumptions", "overrides"):
                    changed.append(f"{key}={_override_text(value)}")
        if changed:
            data["overrides"] = list(self.overrides) + changed
            if name is None and "name" not in overrides:
                data["name"] = "+".join([self.name] + changed)
        if name is not None:
            data["name"] = name
        return type(self).from_dict(data, source)

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (lists, not tuples); ``from_dict`` gives back an equal config."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        """Write YAML or JSON (by extension) atomically: temp file in the same folder, then rename."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in _FILE_SUFFIXES:
            raise ChipConfigError(f"{path}: unknown extension {path.suffix!r}; use .yaml, .yml or .json")
        text = self.to_json() if suffix == ".json" else self.to_yaml()
        from models.fileio import atomic_write

        return atomic_write(path, lambda fh: fh.write(text))


# ----- helpers: paths, errors, files ------------------------------------------------------

def _override_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _flat(value: Mapping, prefix: str = ""):
    for k, v in value.items():
        if isinstance(v, Mapping):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _is_field_path(p: str) -> bool:
    parts = p.split(".")
    if len(parts) == 1:
        return parts[0] in ChipConfig.model_fields
    return len(parts) == 2 and parts[0] in SECTIONS and parts[1] in SECTIONS[parts[0]].model_fields


def _allowed_hint(section_path: list) -> str:
    if not section_path:
        names = ChipConfig.model_fields
    elif len(section_path) == 1 and section_path[0] in SECTIONS:
        names = SECTIONS[section_path[0]].model_fields
    else:
        return ""
    return f" (allowed: {', '.join(names)})"


def _merge(target: dict, value: Mapping, source: str, prefix: list) -> None:
    for k, v in value.items():
        if k not in target:
            raise ChipConfigError(f"{source}: {'.'.join(prefix + [str(k)])}: unknown field"
                                  f"{_allowed_hint(prefix)}")
        if isinstance(v, Mapping) and isinstance(target[k], dict):
            _merge(target[k], v, source, prefix + [str(k)])
        else:
            target[k] = v


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(e: ValidationError) -> str:
    """All pydantic errors on one line: ``core.axons: <msg> (got 0); mesh.width: ...``."""
    msgs = []
    for err in e.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        msg = err.get("msg", "").removeprefix("Value error, ")
        if kind == "extra_forbidden":
            msg = f"unknown field{_allowed_hint([str(p) for p in loc[:-1]])}"
        elif kind == "missing":
            msg = "required field missing"
        elif kind != "value_error" and "input" in err and not isinstance(err["input"], (dict, list, tuple)):
            msg += f" (got {err['input']!r})"
        msgs.append(f"{_loc(loc)}: {msg}")
    return "; ".join(msgs)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (plain safe_load keeps the last silently) and reads
    scalars as YAML 1.2 does: ``12:30`` stays a string (YAML 1.1 made it the base-60 number 750),
    only ``true``/``false`` are booleans (not ``yes``/``no``/``on``/``off``)."""


_UniqueKeyLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                                                     "tag:yaml.org,2002:bool")]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"))
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_mapping(path: Path, label: str) -> Any:
    suffix = path.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise ChipConfigError(f"{label}: unknown extension {path.suffix!r}; use .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChipConfigError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise ChipConfigError(f"{label}: is a directory, not a chip config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ChipConfigError(f"{label}: cannot read: {e}") from None
    return _parse_text(text, suffix, label)


def _parse_text(text: str, suffix: str, label: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ChipConfigError(f"{label}: JSON syntax error at line {e.lineno}, column {e.colno}: "
                                  f"{e.msg}") from None
        except ValueError as e:  # e.g. an integer of more digits than Python converts
            raise ChipConfigError(f"{label}: unreadable value: {' '.join(str(e).split()[:12])}") from None
    try:
        # A SafeLoader subclass: same constructors as yaml.safe_load, no arbitrary objects.
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ChipConfigError(f"{label}: unreadable value: {' '.join(str(e).split()[:12])}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        kind = "YAML error" if isinstance(e, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise ChipConfigError(f"{label}: {kind}{where}: {problem}") from None


def _presets_dir():
    return resources.files("hwsim").joinpath("presets")


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.name[:-5] for p in _presets_dir().iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=None)
def _load_preset(name: str) -> ChipConfig:
    names = list_presets()
    if not isinstance(name, str) or not _PRESET_NAME.match(name) or name not in names:
        raise ChipConfigError(f"unknown chip preset {name!r}; available: {', '.join(names)}")
    label = f"{name}.yaml"
    text = _presets_dir().joinpath(label).read_text(encoding="utf-8")
    return ChipConfig.from_dict(_parse_text(text, ".yaml", label), label)


def _from_base(data: Mapping, path: Path) -> ChipConfig:
    """A chip file that says ``base: PRESET`` (or a path) and gives only the fields it changes."""
    base_spec = data["base"]
    if not isinstance(base_spec, str) or not base_spec:
        raise ChipConfigError(f"{path}: base: expected a preset name or a chip file, got {base_spec!r}")
    if base_spec not in list_presets() and not Path(base_spec).is_absolute():
        base_spec = str(path.parent / base_spec)  # a file path relative to this file
    if Path(base_spec).resolve() == path.resolve():
        raise ChipConfigError(f"{path}: base: names the file itself")
    base = load_chip(base_spec)
    changes = {k: v for k, v in data.items() if k != "base"}
    for k in changes:
        if k not in ChipConfig.model_fields or k == "overrides":
            raise ChipConfigError(f"{path}: {k}: unknown field (allowed: base, "
                                  f"{', '.join(f for f in ChipConfig.model_fields if f != 'overrides')})")
    name = changes.pop("name", None)
    chip = base.with_overrides(changes, str(path)) if changes else base
    if name is None and not changes:
        name = f"{base.name}+{path.stem}"
    return chip.with_overrides({}, str(path), name=name) if name is not None else chip


def load_chip(spec: "str | os.PathLike | ChipConfig") -> ChipConfig:
    """A :class:`ChipConfig` from a preset name, a ``.yaml``/``.yml``/``.json`` path, or a config."""
    if isinstance(spec, ChipConfig):
        return spec
    if isinstance(spec, os.PathLike):
        return ChipConfig.from_file(spec)
    if not isinstance(spec, str) or not spec:
        raise ChipConfigError(f"chip must be a preset name or a config file path, got {spec!r}")
    if spec in list_presets():
        return ChipConfig.preset(spec)
    path = Path(spec)
    if path.suffix.lower() in _FILE_SUFFIXES or os.sep in spec or path.exists():
        return ChipConfig.from_file(path)
    raise ChipConfigError(f"unknown chip {spec!r}: not a preset ({', '.join(list_presets())}) "
                          f"and not a .yaml/.yml/.json file")


def parse_overrides(items: "list[str] | tuple[str, ...]") -> dict:
    """``["core.axons=128", "timing.mode=pipelined"]`` -> dict; values parsed as YAML scalars."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ChipConfigError(f"override {item!r}: expected FIELD=VALUE, e.g. core.axons=128")
        try:
            out[key.strip()] = yaml.load(raw, Loader=_UniqueKeyLoader) if raw.strip() else raw  # noqa: S506
        except (yaml.YAMLError, ValueError):
            raise ChipConfigError(f"override {item!r}: cannot parse value {raw!r}") from None
    return out
