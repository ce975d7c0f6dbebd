"""A chip described for people: every field of a :class:`hwsim.chip.ChipConfig` with its
unit and description, the derived totals (cores, neurons and crossbar cells per core,
chip and system, weight and membrane ranges, memory, clock period, hop latency, the
fixed step), its sources and its labelled assumptions (``snnchip chip show``). Fields
named in an assumption are marked ``*``, overridden ones ``!``."""

from __future__ import annotations

from typing import Any

from .chip import SECTIONS, ChipConfig

__all__ = ["describe"]


def _fmt(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _fmt_hz(hz: float) -> str:
    for div, unit in ((1e9, "GHz"), (1e6, "MHz"), (1e3, "kHz")):
        if hz >= div:
            return f"{hz / div:g} {unit}"
    return f"{hz:g} Hz"


def describe(chip: ChipConfig) -> str:
    """Readable multi-line text: every field with its unit, the derived totals, sources and
    assumptions. Fields named in an assumption are marked ``*``."""
    assumed = chip.assumed_fields()
    changed = {o.split("=", 1)[0] for o in chip.overrides}
    lines = [f"{chip.name}: {chip.description}".rstrip(": ")]
    if changed:
        lines.append(f"overridden (marked !): {', '.join(chip.overrides)}")
    rows = []  # (section header or None, mark, name, value with unit, description)
    for section, cls in SECTIONS.items():
        rows.append((f"{section}:", "", "", "", ""))
        sec = getattr(chip, section)
        for fname, finfo in cls.model_fields.items():
            value = getattr(sec, fname)
            unit = (finfo.json_schema_extra or {}).get("unit", "")
            if value is None:
                shown = f"{chip.core.state_bits} (= membrane_bits)" if fname == "state_bits_per_neuron" \
                    else "default"
            elif section == "timing" and fname == "clock_hz":
                shown, unit = _fmt_hz(value), ""
            elif isinstance(value, str) and unit == "cycles":  # step_cycles: dynamic
                shown, unit = value, ""
            else:
                shown = _fmt(value)
            field_path = f"{section}.{fname}"
            mark = "!" if field_path in changed else "*" if field_path in assumed else " "
            rows.append((None, mark, fname, shown + (f" {unit}" if unit else ""), finfo.description or ""))
    wv = max(len(r[3]) for r in rows) + 2
    for head, mark, fname, shown, desc in rows:
        lines.append(head if head else f"  {mark}{fname:<22} {shown:<{wv}}{desc}")
    c = chip.core
    wmin, wmax = chip.weight_range
    vmin, vmax = chip.membrane_range
    state_kib = c.neurons_per_core * c.max_fold * c.state_bits / 8 / 1024
    weight_kib = c.crossbar_cells_per_core * c.weight_bits / 8 / 1024
    if c.synapse_memory == "sparse":  # a full crossbar's worth of nonzero synapses
        weight_kib = c.crossbar_cells_per_core * (c.weight_bits + c.synapse_index_bits) / 8 / 1024
    elif c.axon_types:  # binary crossbar + one weight per neuron and type
        weight_kib = (c.crossbar_cells_per_core + c.neurons_per_core * c.axon_types * c.weight_bits) / 8 / 1024
    lines += [
        "derived:",
        f"   cores per chip          {chip.cores_per_chip:,} ({chip.mesh.width} x {chip.mesh.height})",
        f"   chips / total cores     {chip.chips:,} ({chip.mesh.chips_x} x {chip.mesh.chips_y}) / "
        f"{chip.total_cores:,} (mapper may use up to {chip.mesh.max_chips} chips)",
        f"   neurons per core/chip   {c.neurons_per_core:,} / {chip.neurons_per_chip:,}",
        f"   crossbar cells per core {c.crossbar_cells_per_core:,}; per chip {chip.crossbar_cells_per_chip:,}; "
        f"system {chip.crossbar_cells:,}",
        f"   weight range            [{wmin}, {wmax}]",
        f"   membrane range          [{vmin}, {vmax}]",
        f"   state bits per neuron   {c.state_bits}",
        f"   full-crossbar weights   {weight_kib:,.1f} KiB per core{' if every cell were a synapse' if c.synapse_memory == 'sparse' else ''}; state at max_fold "
        f"{state_kib:,.1f} KiB; memory {c.memory_bytes / 1024:,.1f} KiB",
        f"   clock period            {chip.cycle_ns:g} ns",
        f"   hop latency             {chip.noc.router_cycles + chip.noc.link_cycles} cycles "
        f"(router {chip.noc.router_cycles} + link {chip.noc.link_cycles})",
    ]
    if chip.step_ns is not None:
        lines.append(f"   fixed step              {chip.timing.step_cycles:,} cycles = "
                     f"{chip.step_ns / 1000:g} us")
    lines.append("sources:")
    lines += [f"  - {s}" for s in chip.sources] or ["  (none)"]
    lines.append("assumptions (fields marked *):")
    lines += [f"  - {a}" for a in chip.assumptions] or ["  (none)"]
    return "\n".join(lines)

