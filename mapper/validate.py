"""Design-rule checks of a mapping: every broken limit is reported at once.

Each rule is a function ``rule_<name>(ctx) -> list[Violation]`` that checks one resource
and returns ALL of its violations; :data:`RULES` lists them and :func:`check` runs the
list (as Rockpool's Xylo mapper runs its ``xylo_drc`` list). To add a rule, write such a
function, take the limit from the chip config, and append it to :data:`RULES`. A
violation names the layer (population), tile (its block coordinates), core and the
limit, e.g. ``axons: conv3 tile (2, 1) on core 17: needs 310 axons, core has 256``.

Rules
-----
``axons``, ``neurons``   per tile: rows/columns used <= ``core.axons`` / ``core.neurons``
``mode``                 MAC tiles need ``"ANN"`` in ``core.modes``, AC tiles ``"SNN"``
``crossbars``            per core: distinct weight matrices <= ``core.crossbars_per_core``
``fold``                 per core: tiles time-multiplexed on one crossbar <= ``core.max_fold``
``memory``               per core: weight bytes + state bytes <= ``core.memory_bytes``, with
                         weight bytes = crossbars x axons x neurons x weight_bits / 8
                         (``synapse_memory: sparse``: ceil(nonzero synapses stored x
                         (weight_bits + synapse_index_bits) / 8), Loihi) and
                         state bytes = sum over tiles of n_neurons x membrane_bits / 8
                         (partial tiles hold their partial sums at the same width)
``neuron_model``         every population's model is in ``core.neuron_models``
``weight_bits``          quantised weights lie in the signed ``weight_bits`` range
``axon_types``           ``core.axon_types = k > 0``: per column, one weight per input type, <= k types
``cores``                cores used <= mesh.width x mesh.height x mesh.max_chips
``routing_entries``      per core: routing-table entries <= ``core.routing_entries``

In the text of :class:`MappingError`, several violations of one rule by the tiles (or
cores) of one layer read as one: the first in full, then how many there are, e.g.
``neurons: conv2 tile (4,) on core 12: needs 300 neurons, core has 256 (1 of 27 tiles of
layer conv2 that exceed 256 neurons)``. ``MappingError.violations`` keeps every one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.errors import SnnchipError


@dataclass(frozen=True)
class Violation:
    """One broken limit. ``unit`` ("tile", "core"; empty: never grouped) and ``limit`` (e.g.
    ``"256 neurons"``) word the grouped error text."""

    rule: str
    population: str
    where: str
    message: str
    unit: str = ""
    limit: str = ""

    def __str__(self):
        return f"{self.rule}: {self.message}"


def group_violations(violations: list) -> list[str]:
    """One text per violation; several of one rule by the ``unit``s of one layer become one text."""
    groups: dict = {}
    for v in violations:
        key = (v.rule, v.population, v.unit) if v.unit else id(v)
        groups.setdefault(key, []).append(v)
    out = []
    for vs in groups.values():
        v = vs[0]
        more = f" (1 of {len(vs)} {v.unit}s of layer {v.population} that exceed {v.limit})" if len(vs) > 1 else ""
        out.append(f"{v}{more}")
    return out


class MappingError(SnnchipError):
    """A mapping breaks chip limits; ``violations`` lists every one."""

    def __init__(self, violations: list, context: str = ""):
        self.violations = list(violations)
        head = f"{context}: " if context else ""
        super().__init__(f"{head}mapping violates {len(self.violations)} chip limit(s): "
                         + "; ".join(group_violations(self.violations)))


def tile_label(t) -> str:
    blk = tuple(b for b in t.block[1:] if not isinstance(b, str)) if isinstance(t.block, tuple) else t.block
    return f"{t.population} tile {blk}"


def core_bytes(tiling, chip) -> np.ndarray:
    """(n_cores, 3) per core: crossbars, weight bytes, state bytes (from ``Tiling.core_memory``)."""
    mem = tiling.core_memory(chip)
    return np.column_stack([tiling.core_crossbars(), mem[:, 0], mem[:, 1]])


@dataclass
class Context:
    """What the rules read: the tiling, the chip, the (quantised) net and routes when given,
    and per-tile and per-core tables computed once for all rules."""

    tiling: object
    chip: object
    net: object = None
    routes: object = None

    @cached_property
    def tile_where(self) -> list:
        """Per tile: ``"<population> tile <block> on core <k>"``."""
        core_of = {}
        for k, tids in enumerate(self.tiling.cores):
            for t in tids:
                core_of[t] = k
        return [f"{tile_label(t)} on core {core_of.get(t.id, '?')}" for t in self.tiling.tiles]

    @cached_property
    def per_core(self) -> np.ndarray:
        """(n_cores, 3): crossbars, weight bytes, state bytes (:func:`core_bytes`)."""
        return core_bytes(self.tiling, self.chip)

    @cached_property
    def core_populations(self) -> list:
        """Per core: the sorted populations of its tiles."""
        return [sorted({self.tiling.tiles[t].population for t in tids}) for tids in self.tiling.cores]

    def core_where(self, k: int) -> str:
        return f"core {k} ({', '.join(self.core_populations[k])})"

    def core_violation(self, rule: str, k: int, need: str, limit: str, where: str | None = None) -> Violation:
        """``<rule>: core k (<populations>): <need>``, filed under the core's first population."""
        lab = self.core_where(k)
        return Violation(rule, self.core_populations[k][0], where or lab, f"{lab}: {need}", "core", limit)


# ---------------------------------------------------------------------------------------
# the rules, one function each
# ---------------------------------------------------------------------------------------

def rule_axons(ctx: Context) -> list:
    from .tiling.tiler import input_copies

    c = ctx.chip.core
    k = input_copies(ctx.net) if ctx.net is not None else 1
    copies = f" ({{}} inputs x {k} copies)" if k > 1 else ""
    return [Violation("axons", t.population, lab, f"{lab}: needs {t.n_axons * k} axons{copies.format(t.n_axons)}, "
                                                  f"core has {c.axons}", "tile", f"{c.axons} axons")
            for t, lab in zip(ctx.tiling.tiles, ctx.tile_where) if t.n_axons * k > c.axons]


def rule_neurons(ctx: Context) -> list:
    c = ctx.chip.core
    return [Violation("neurons", t.population, lab, f"{lab}: needs {t.n_neurons} neurons, core has {c.neurons}",
                      "tile", f"{c.neurons} neurons")
            for t, lab in zip(ctx.tiling.tiles, ctx.tile_where) if t.n_neurons > c.neurons]


def rule_mode(ctx: Context) -> list:
    modes = list(ctx.chip.core.modes)
    return [Violation("mode", t.population, lab, f"{lab}: runs in {t.mode} mode, core supports {modes}",
                      "tile", f"the modes {modes}")
            for t, lab in zip(ctx.tiling.tiles, ctx.tile_where)
            if ("ANN" if t.mode == "MAC" else "SNN") not in modes]


def rule_crossbars(ctx: Context) -> list:
    c = ctx.chip.core
    return [ctx.core_violation("crossbars", k, f"needs {n} crossbars, core has {c.crossbars_per_core}",
                               f"{c.crossbars_per_core} crossbars")
            for k, n in enumerate(ctx.per_core[:, 0].tolist()) if n > c.crossbars_per_core]


def rule_fold(ctx: Context) -> list:
    c = ctx.chip.core
    folds = [-(-len(tids) // max(n, 1)) for tids, n in zip(ctx.tiling.cores, ctx.per_core[:, 0].tolist())]
    return [ctx.core_violation("fold", k, f"folds {f} blocks per crossbar, core.max_fold is {c.max_fold}",
                               f"fold {c.max_fold}")
            for k, f in enumerate(folds) if f > c.max_fold]


def rule_memory(ctx: Context) -> list:
    c = ctx.chip.core
    return [ctx.core_violation("memory", k, f"needs {wb + sb:,} bytes ({wb:,} weights + {sb:,} state), "
                                            f"core has {c.memory_bytes:,}", f"{c.memory_bytes:,} bytes")
            for k, (_, wb, sb) in enumerate(ctx.per_core.tolist()) if wb + sb > c.memory_bytes]


def rule_neuron_model(ctx: Context) -> list:
    if ctx.net is None:
        return []
    c = ctx.chip.core
    return [Violation("neuron_model", p.name, p.name,
                      f"{p.name}: neuron model {p.model} not supported (core has {list(c.neuron_models)})")
            for p in ctx.net.populations[1:] if p.model not in c.neuron_models]


def rule_activation_payload(ctx: Context) -> list:
    """An ANN unit's activation (a value up to ``a_max_q``) travels as the event payload:
    ``core.spike_payload_bits`` must hold its largest value (0 = binary events only)."""
    if ctx.net is None or not getattr(ctx.net, "quantized", False):
        return []
    from models import neurons

    bits = int(ctx.chip.core.spike_payload_bits)
    out = []
    for p in ctx.net.populations[1:]:
        nm = neurons.BY_NAME.get(p.model)  # an unknown model is rule_neuron_model's violation
        if nm is not None and nm.activation and ctx.net.outgoing(p.name):
            top = int(np.max(p.params["a_max"], initial=0))
            if top > (2 ** bits - 1 if bits else 1):
                out.append(Violation("payload", p.name, p.name,
                                     f"{p.name}: ANN activations up to {top} need {top.bit_length()} payload bits "
                                     f"per event, core.spike_payload_bits is {bits}", "", f"{bits} bits"))
    return out


def rule_weight_bits(ctx: Context) -> list:
    if ctx.net is None or not getattr(ctx.net, "quantized", False):
        return []
    bits = ctx.chip.core.weight_bits
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    out = []
    for q in ctx.net.projections:
        w = getattr(q, "weight", None)
        if w is None:
            w = q.csr.data
        if w.size and (w.min() < lo or w.max() > hi):
            out.append(Violation("weight_bits", q.dst, q.name,
                                 f"{q.name}: weights in [{w.min()}, {w.max()}] exceed {bits}-bit range [{lo}, {hi}]"))
    return out


def rule_axon_types(ctx: Context) -> list:
    """``core.axon_types = k > 0`` (TrueNorth): in every column, the nonzero weights of the
    inputs of one type are one value, and at most ``k`` types (:mod:`mapper.axon_types`)."""
    k = int(getattr(ctx.chip.core, "axon_types", 0) or 0)
    if not k or ctx.net is None or not getattr(ctx.net, "quantized", False):
        return []
    from .axon_types import type_violations

    out = [Violation("axon_types", _dst(ctx.net, name), name, f"{name}: {text}")
           for name, text in type_violations(ctx.net)]
    for name, rec in (ctx.net.metadata.get("axon_types") or {}).items():
        if rec.get("k", 0) > k:
            out.append(Violation("axon_types", _dst(ctx.net, name), name,
                                 f"{name}: uses {rec['k']} axon types, core has {k}"))
    return out


def _dst(net, proj_name: str) -> str:
    return next((q.dst for q in net.projections if q.name == proj_name), proj_name)


def rule_cores(ctx: Context) -> list:
    mesh = ctx.chip.mesh
    avail = mesh.width * mesh.height * mesh.max_chips
    n = len(ctx.tiling.cores)
    if n <= avail:
        return []
    per_pop: dict = {}
    for tids in ctx.tiling.cores:
        for p in {ctx.tiling.tiles[t].population for t in tids}:
            per_pop[p] = per_pop.get(p, 0) + 1
    worst = ", ".join(f"{p} {k:,}" for p, k in sorted(per_pop.items(), key=lambda kv: -kv[1])[:8])
    return [Violation("cores", "", "system",
                      f"needs {n:,} cores, system has {avail:,} "
                      f"({mesh.max_chips} chips x {mesh.width}x{mesh.height}); cores by layer: {worst}")]


def rule_routing_entries(ctx: Context) -> list:
    if ctx.routes is None:
        return []
    limit = ctx.chip.core.routing_entries
    entries = ctx.routes.table_entries
    over = np.flatnonzero(entries > limit)
    out = []
    for k in over[:50]:
        out.append(ctx.core_violation("routing_entries", int(k),
                                      f"needs {entries[k]} routing entries, core has {limit}",
                                      f"{limit} routing entries", where=f"core {k}"))
    if over.size > 50:
        out.append(Violation("routing_entries", "", "cores", f"... and {over.size - 50} more cores over routing_entries"))
    return out


#: every design rule, run in this order by :func:`check`
RULES = [rule_axons, rule_neurons, rule_mode, rule_crossbars, rule_fold, rule_memory, rule_neuron_model,
         rule_activation_payload, rule_weight_bits, rule_axon_types, rule_cores, rule_routing_entries]


def check(tiling, chip, *, net=None, routes=None) -> list:
    """All violations of every rule in :data:`RULES` (empty list = the mapping fits)."""
    ctx = Context(tiling, chip, net, routes)
    return [v for rule in RULES for v in rule(ctx)]


def validate(tiling, chip, *, net=None, routes=None, context: str = "") -> None:
    """Raise :class:`MappingError` listing every violation, or return None."""
    v = check(tiling, chip, net=net, routes=routes)
    if v:
        raise MappingError(v, context)
