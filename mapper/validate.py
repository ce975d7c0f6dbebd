"""Design-rule checks of a mapping: every broken limit is reported at once.

Each rule has a name and checks one resource; a violation names the layer
(population), tile (its block coordinates), core and the limit, e.g.
``axons: conv3 tile (2, 1) on core 17: needs 310 axons, core has 256``.

Rules
-----
``axons``, ``neurons``   per tile: rows/columns used <= ``core.axons`` / ``core.neurons``
``crossbars``            per core: distinct weight matrices <= ``core.crossbars_per_core``
``fold``                 per core: tiles time-multiplexed on one crossbar <= ``core.max_fold``
``memory``               per core: weight bytes + state bytes <= ``core.memory_bytes``, with
                         weight bytes = crossbars x axons x neurons x weight_bits / 8 and
                         state bytes = sum over tiles of n_neurons x membrane_bits / 8
                         (partial tiles hold their partial sums at the same width)
``neuron_model``         every population's model is in ``core.neuron_models``
``mode``                 MAC tiles need ``"ANN"`` in ``core.modes``, AC tiles ``"SNN"``
``weight_bits``          quantised weights lie in the signed ``weight_bits`` range
``cores``                cores used <= mesh.width x mesh.height x mesh.max_chips
``routing_entries``      per core: routing-table entries <= ``core.routing_entries``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import SnnchipError


@dataclass(frozen=True)
class Violation:
    rule: str
    population: str
    where: str
    message: str

    def __str__(self):
        return f"{self.rule}: {self.message}"


class MappingError(SnnchipError):
    """A mapping breaks chip limits; ``violations`` lists every one."""

    def __init__(self, violations: list, context: str = ""):
        self.violations = list(violations)
        head = f"{context}: " if context else ""
        super().__init__(f"{head}mapping violates {len(self.violations)} chip limit(s): "
                         + "; ".join(str(v) for v in self.violations))


def tile_label(t) -> str:
    blk = tuple(b for b in t.block[1:] if not isinstance(b, str)) if isinstance(t.block, tuple) else t.block
    return f"{t.population} tile {blk}"


def core_bytes(tiling, chip) -> np.ndarray:
    """(n_cores, 3) per core: crossbars, weight bytes, state bytes (from ``Tiling.core_memory``)."""
    mem = tiling.core_memory(chip)
    per_xbar = chip.core.axons * chip.core.neurons * chip.core.weight_bits // 8
    return np.column_stack([mem[:, 0] // per_xbar, mem[:, 0], mem[:, 1]])


def check(tiling, chip, *, net=None, routes=None) -> list:
    """All violations of the rules above (empty list = the mapping fits)."""
    c = chip.core
    out: list[Violation] = []
    core_of = {}
    for k, tids in enumerate(tiling.cores):
        for t in tids:
            core_of[t] = k
    for t in tiling.tiles:
        lab = f"{tile_label(t)} on core {core_of.get(t.id, '?')}"
        if t.n_axons > c.axons:
            out.append(Violation("axons", t.population, lab, f"{lab}: needs {t.n_axons} axons, core has {c.axons}"))
        if t.n_neurons > c.neurons:
            out.append(Violation("neurons", t.population, lab,
                                 f"{lab}: needs {t.n_neurons} neurons, core has {c.neurons}"))
        need = "ANN" if t.mode == "MAC" else "SNN"
        if need not in c.modes:
            out.append(Violation("mode", t.population, lab, f"{lab}: runs in {t.mode} mode, core supports {list(c.modes)}"))
    per_core = core_bytes(tiling, chip)
    for k, tids in enumerate(tiling.cores):
        crossbars, wb, sb = (int(v) for v in per_core[k])
        pops = sorted({tiling.tiles[t].population for t in tids})
        lab = f"core {k} ({', '.join(pops)})"
        if crossbars > c.crossbars_per_core:
            out.append(Violation("crossbars", pops[0], lab, f"{lab}: needs {crossbars} crossbars, core has {c.crossbars_per_core}"))
        fold = -(-len(tids) // max(crossbars, 1))
        if fold > c.max_fold:
            out.append(Violation("fold", pops[0], lab, f"{lab}: folds {fold} blocks per crossbar, core.max_fold is {c.max_fold}"))
        if wb + sb > c.memory_bytes:
            out.append(Violation("memory", pops[0], lab,
                                 f"{lab}: needs {wb + sb:,} bytes ({wb:,} weights + {sb:,} state), core has {c.memory_bytes:,}"))
    if net is not None:
        lo, hi = -(2 ** (c.weight_bits - 1)), 2 ** (c.weight_bits - 1) - 1
        for p in net.populations[1:]:
            if p.model not in c.neuron_models:
                out.append(Violation("neuron_model", p.name, p.name,
                                     f"{p.name}: neuron model {p.model} not supported (core has {list(c.neuron_models)})"))
        if getattr(net, "quantized", False):
            for q in net.projections:
                w = getattr(q, "weight", None)
                if w is None:
                    w = q.csr.data
                if w.size and (w.min() < lo or w.max() > hi):
                    out.append(Violation("weight_bits", q.dst, q.name,
                                         f"{q.name}: weights in [{w.min()}, {w.max()}] exceed {c.weight_bits}-bit range [{lo}, {hi}]"))
    avail = chip.mesh.width * chip.mesh.height * chip.mesh.max_chips
    if len(tiling.cores) > avail:
        per_pop: dict = {}
        for tids in tiling.cores:
            for p in {tiling.tiles[t].population for t in tids}:
                per_pop[p] = per_pop.get(p, 0) + 1
        worst = ", ".join(f"{p} {n:,}" for p, n in sorted(per_pop.items(), key=lambda kv: -kv[1])[:8])
        out.append(Violation("cores", "", "system",
                             f"needs {len(tiling.cores):,} cores, system has {avail:,} "
                             f"({chip.mesh.max_chips} chips x {chip.mesh.width}x{chip.mesh.height}); cores by layer: {worst}"))
    if routes is not None:
        over = np.flatnonzero(routes.table_entries > c.routing_entries)
        for k in over[:50]:
            pops = sorted({tiling.tiles[t].population for t in tiling.cores[k]})
            out.append(Violation("routing_entries", pops[0], f"core {k}",
                                 f"core {k} ({', '.join(pops)}): needs {routes.table_entries[k]} routing entries, "
                                 f"core has {c.routing_entries}"))
        if over.size > 50:
            out.append(Violation("routing_entries", "", "cores", f"... and {over.size - 50} more cores over routing_entries"))
    return out


def validate(tiling, chip, *, net=None, routes=None, context: str = "") -> None:
    """Raise :class:`MappingError` listing every violation, or return None."""
    v = check(tiling, chip, net=net, routes=routes)
    if v:
        raise MappingError(v, context)
