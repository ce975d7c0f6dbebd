r"""Weight-stationary mapping (``core.conv_mapping: weight_stationary``): one kernel copy per layer.

This module owns the mapping crossbar accelerators use (ISAAC, PRIME, memristive
arrays; the counting of Liang, Deng et al., IEEE Access 2018): a layer's weights are
stored once, as a ``rows x columns`` matrix, and the layer's output positions stream
through it one after another. It gives the exact crossbar and core counts, the cycles
per step and the weight memory, on the quantised net (``mapper.quantize``, the integers
:mod:`models.intref` runs); :mod:`hwsim.stationary` runs it (``hwsim.simulate`` and
``snnchip run`` dispatch there). ``hwsim.compile`` builds unrolled programs only, so
:func:`check_runnable` refuses a weight-stationary mapping there.

Layers (one per projection of the lowered net)
----------------------------------------------
* **conv** (``C_in -> C_out``, kernel ``kh x kw``, ``g`` groups): ``g`` matrices of
  ``rows = (C_in / g) kh kw`` and ``columns = C_out / g``; ``positions = H_out W_out``.
  Lowering composes a sum/average pooling into the next convolution (kernel ``p k``,
  stride ``p s``, padding ``p pad``); a weight-stationary accelerator pools in digital
  logic, so the composed kernel is factored back whenever that is exact: along each
  axis the largest ``p`` that divides kernel, stride and padding and leaves the kernel
  constant on ``p``-blocks. The matrix is then the convolution's own ``(C_in/g) k k``,
  as the graph's Conv2d node has it.
* **dense** (``W`` of ``n_post x K``, optional pooling/flatten ``pre_map``): one matrix of
  ``rows = K`` (the features after the pooling, which is digital) and ``columns = n_post``;
  1 position.
* **digital**: a depthwise 1x1 convolution after that factoring (a pooling or scaling
  between neuron layers) and a diagonal sparse projection (an identity skip): no
  crossbar; the adds run in the digital units. Any other sparse projection is a dense
  matrix of its nonzero rows x ``n_post``.

Counts, with crossbars of ``A = core.axons`` rows and ``N = core.neurons`` columns::

    crossbars(layer) = g * ceil(rows / A) * ceil(columns / N)
    cores(layer)     = ceil(crossbars / core.crossbars_per_core)   (a core serves one layer)
    cycles(layer)    = positions * (ceil(min(columns, N) / pe_width) + event_overhead_cycles)
    cycles per step  = sum over layers (sync: layer after layer), + barrier_cycles   (:func:`cycles_per_step`)

(every crossbar of a layer works on the same position at once; a position's columns are
read out ``pe_width`` at a time). Work per step: ``positions * crossbars`` crossbar reads
and ``positions * g * rows * columns`` cell operations per layer (dense: every input row
is driven whether it spikes or not, an all-zero input vector included; a cell operation
is an AC for a spiking source, a MAC for a real-valued one). These are the counters
:mod:`hwsim.stationary` reports per step, the energy tables price them. Weight memory: ``crossbars * A * N * weight_bits / 8``
bytes; the stored weights are the matrices' cells (one copy: duplication 1).

Example (VGG-8 on CIFAR-10, 256 x 256 crossbars): conv 27/1152/1152/2304/2304/4608 rows
x 128/128/256/256/512/512 columns -> 1 + 5 + 5 + 9 + 18 + 36 crossbars; fc 8192 x 1024
-> 32 x 4 = 128 and 1024 x 10 -> 4: 206 in all (tests/mapper/test_stationary.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.errors import SnnchipError
from models.fileio import atomic_write, read_npz
from models.net import ConvProjection, DenseProjection, SparseProjection

MODE = "weight_stationary"


class StationaryError(SnnchipError):
    """A weight-stationary mapping cannot be built or run (names the layer or the mode)."""


@dataclass
class StationaryLayer:
    """One projection's stationary matrix (``kind`` conv | dense | digital)."""

    projection: str
    population: str
    kind: str
    rows: int
    columns: int
    groups: int
    positions: int
    kernel: tuple = ()
    pool: tuple = (1, 1)
    row_chunks: int = 0
    column_blocks: int = 0
    crossbars: int = 0
    cores: int = 0
    cycles: int = 0
    weights: int = 0  # nonzero weights stored (one copy)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def pool_factor(weight: np.ndarray, kernel, stride, padding) -> tuple[int, int]:
    """The largest exact sum-pooling factor ``(ph, pw)`` of a composed conv kernel (module
    docstring): ``p`` divides kernel, stride and padding along the axis and the kernel is
    constant on ``p``-blocks of that axis."""
    out = []
    for ax in (0, 1):
        K, S, P = int(kernel[ax]), int(stride[ax]), int(padding[ax])
        best = 1
        for p in range(min(K, S), 1, -1):
            if K % p or S % p or P % p:
                continue
            w = np.moveaxis(np.asarray(weight), 2 + ax, -1)
            blocks = w.reshape(w.shape[:-1] + (K // p, p))
            if np.all(blocks == blocks[..., :1]):
                best = p
                break
        out.append(best)
    return tuple(out)


def _is_diagonal(q: SparseProjection) -> bool:
    m = q.csr
    return m.shape[0] == m.shape[1] and np.diff(m.indptr).max(initial=0) <= 1 \
        and np.diff(m.tocsc().indptr).max(initial=0) <= 1


def layer_of(q, chip) -> StationaryLayer:
    """The :class:`StationaryLayer` of projection ``q`` on ``chip`` (module docstring)."""
    c = chip.core
    A, N = int(c.axons), int(c.neurons)
    if isinstance(q, ConvProjection):
        g = q.geom
        ph, pw = pool_factor(q.weight, g.kernel, g.stride, g.padding)
        kh, kw = g.kernel[0] // ph, g.kernel[1] // pw
        core = np.asarray(q.weight)[:, :, ::ph, ::pw]
        positions = int(np.prod(g.out_hw))
        if g.groups == g.in_channels == g.out_channels and kh == kw == 1:
            lay = StationaryLayer(q.name, q.dst, "digital", 0, 0, g.groups, positions, (kh, kw), (ph, pw))
        else:
            lay = StationaryLayer(q.name, q.dst, "conv", (g.in_channels // g.groups) * kh * kw,
                                  g.out_channels // g.groups, g.groups, positions, (kh, kw), (ph, pw),
                                  weights=int(np.count_nonzero(core)))
    elif isinstance(q, DenseProjection):
        W = np.asarray(q.weight)
        lay = StationaryLayer(q.name, q.dst, "dense", int(W.shape[1]), int(W.shape[0]), 1, 1,
                              weights=int(np.count_nonzero(W)))
    elif isinstance(q, SparseProjection):
        if _is_diagonal(q):
            lay = StationaryLayer(q.name, q.dst, "digital", 0, 0, 1, 1)
        else:
            rows = int(np.count_nonzero(np.diff(q.csr.indptr)))
            lay = StationaryLayer(q.name, q.dst, "dense", rows, q.n_post, 1, 1, weights=int(q.nnz))
    else:
        raise StationaryError(f"projection '{q.name}': unknown projection type {type(q).__name__}")
    if lay.kind != "digital":
        lay.row_chunks = -(-lay.rows // A)
        lay.column_blocks = -(-lay.columns // N)
        lay.crossbars = lay.groups * lay.row_chunks * lay.column_blocks
        lay.cores = -(-lay.crossbars // int(c.crossbars_per_core))
        lay.cycles = lay.positions * (-(-min(lay.columns, N) // int(c.pe_width)) + int(c.event_overhead_cycles))
    return lay


def cycles_per_step(layers, chip) -> int:
    """``sum over crossbar layers of cycles(layer) + timing.barrier_cycles`` (module docstring):
    the one home of the weight-stationary step time, for the report and the simulator."""
    return sum(lay.cycles for lay in layers if lay.kind != "digital") + int(chip.timing.barrier_cycles)


@dataclass
class StationaryMapping:
    """A weight-stationary mapping: the quantised net, the chip and one :class:`StationaryLayer`
    per projection. ``report()`` prints the resource report; ``save()`` writes
    ``mapping.json`` (resources, layers, the net's structure) and ``stationary.npz`` (the
    net's integer arrays); :func:`load_stationary` reads them back for ``snnchip run``."""

    chip: object
    net: object
    layers: list
    model: str = ""
    notes: list = field(default_factory=list)
    quant: dict = field(default_factory=dict)
    file_sha256: str = ""

    def __repr__(self) -> str:
        r = self.resources()
        return (f"StationaryMapping({self.model or 'model'} on {self.chip.name}: {r['crossbars']:,} crossbars "
                f"in {r['cores_used']:,} cores, {r['cycles_per_step']:,} cycles/step)")

    @property
    def mode(self) -> str:
        return MODE

    @property
    def tiling(self):
        """There is none: reading it (``hwsim.compile`` does) raises the one-line refusal of
        :func:`check_runnable`, so the unrolled compiler refuses this mapping by name."""
        check_runnable(self)

    def resources(self) -> dict:
        chip = self.chip
        c = chip.core
        xb = [lay for lay in self.layers if lay.kind != "digital"]
        crossbars = sum(lay.crossbars for lay in xb)
        cores = sum(lay.cores for lay in xb)
        cpc = chip.mesh.width * chip.mesh.height
        cells = crossbars * c.axons * c.neurons
        stored = sum(lay.weights for lay in xb)
        cycles = cycles_per_step(self.layers, chip)
        reads = sum(lay.positions * lay.crossbars for lay in xb)
        macs = sum(lay.positions * lay.groups * lay.rows * lay.columns for lay in xb)
        return {"conv_mapping": MODE, "crossbars": crossbars, "cores_used": cores, "cores_per_chip": cpc,
                "crossbar_reads_per_step": reads, "cell_macs_per_step": macs,
                "chips_used": -(-cores // cpc), "max_chips": chip.mesh.max_chips,
                "crossbars_conv": sum(lay.crossbars for lay in xb if lay.kind == "conv"),
                "crossbars_dense": sum(lay.crossbars for lay in xb if lay.kind == "dense"),
                "weight_bytes": cells * c.weight_bits // 8, "weights_stored": stored,
                "crossbar_utilization": stored / max(1, cells), "cycles_per_step": cycles,
                "step_us": cycles / chip.timing.clock_hz * 1e6,
                "digital_layers": sum(lay.kind == "digital" for lay in self.layers)}

    def report(self) -> str:
        r = self.resources()
        c = self.chip.core
        lines = [
            f"mapping of {self.model or 'model'} on {self.chip.name} (weight-stationary: one copy of each kernel, "
            f"output positions streamed)",
            f"  cores used       {r['cores_used']:,} on {r['chips_used']} chip(s) ({r['cores_per_chip']} cores each, "
            f"{c.crossbars_per_core} crossbars per core, max {r['max_chips']} chips)",
            f"  crossbars        {r['crossbars']:,} of {c.axons} x {c.neurons} (conv {r['crossbars_conv']:,}, "
            f"fc {r['crossbars_dense']:,}); {r['digital_layers']} pooling/skip projection(s) in digital units",
            f"  utilization      {100 * r['crossbar_utilization']:.1f} % of crossbar cells hold a weight",
            f"  weight memory    {r['weight_bytes'] / 1024:,.1f} KiB of crossbar cells; {r['weights_stored']:,} "
            f"weights stored once (duplication x1.0)",
            f"  cycles per step  {r['cycles_per_step']:,} = sum over layers of positions x (ceil(columns / "
            f"pe_width {c.pe_width}) + {c.event_overhead_cycles}) + barrier "
            f"({r['step_us']:,.2f} us at {self.chip.timing.clock_hz / 1e6:g} MHz)",
            f"  work per step    {r['crossbar_reads_per_step']:,} crossbar reads (positions x crossbars), "
            f"{r['cell_macs_per_step']:,} cell operations (positions x rows x columns), every input vector "
            f"driven; `snnchip run` simulates it (hwsim.stationary)",
        ] + [f"  {n}" for n in self.notes] + [""]
        lines.append(f"{'projection':<26}{'kind':<8}{'rows':>7}{'cols':>6}{'groups':>7}{'kernel':>7}{'pool':>6}"
                     f"{'chunks':>7}{'blocks':>7}{'xbars':>7}{'cores':>6}{'positions':>10}{'cycles':>11}")
        for lay in self.layers:
            k = "x".join(map(str, lay.kernel)) if lay.kernel else "-"
            p = "x".join(map(str, lay.pool)) if lay.pool != (1, 1) else "-"
            lines.append(f"{lay.projection[:25]:<26}{lay.kind:<8}{lay.rows:>7,}{lay.columns:>6,}{lay.groups:>7}"
                         f"{k:>7}{p:>6}{lay.row_chunks:>7}{lay.column_blocks:>7}{lay.crossbars:>7,}"
                         f"{lay.cores:>6,}{lay.positions:>10,}{lay.cycles:>11,}")
        return "\n".join(lines)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``mapping.json`` (chip, resources, layers, the net's structure) and
        ``stationary.npz`` (the net's arrays) into ``folder`` as a unit."""
        from models.fileio import AtomicFolder
        from models.netio import net_to_dict

        folder = Path(folder)
        net_doc, arrays = net_to_dict(self.net)
        doc = {"conv_mapping": MODE, "model": self.model, "chip": self.chip.to_dict(),
               "resources": self.resources(), "layers": [lay.to_dict() for lay in self.layers],
               "notes": list(self.notes), "net": net_doc}
        text = json.dumps(doc, indent=1)
        with AtomicFolder(folder) as out:
            atomic_write(out.tmp / NPZ, lambda f: np.savez_compressed(f, **arrays), binary=True)
            atomic_write(out.tmp / "mapping.json", lambda f: f.write(text))
        (folder / "mapping.npz").unlink(missing_ok=True)  # an earlier unrolled mapping's arrays
        return folder


#: the arrays of a saved weight-stationary mapping (beside ``mapping.json``)
NPZ = "stationary.npz"


def load_stationary(folder: str | os.PathLike) -> StationaryMapping:
    """Read a weight-stationary mapping folder written by :meth:`StationaryMapping.save`.

    The chip is validated, the net rebuilt from its arrays (numbers only, sizes checked
    against the memory budget), every weight checked against the chip's integer range, and
    the layers recomputed from the net must equal the saved ones; any failure raises
    :class:`mapper.mapfile.MappingFileError` naming the file and the field."""
    import hashlib
    import zipfile

    from hwsim.chip import ChipConfig
    from models.limits import check_bytes
    from models.netio import net_from_dict

    from .errors import MappingFileError

    folder = Path(folder)
    jpath, npath = folder / "mapping.json", folder / NPZ
    for pth in (jpath, npath):
        if not pth.is_file():
            raise MappingFileError(f"{pth}: no such file (write the mapping again with `snnchip map -o`)")
    text = jpath.read_bytes()
    check_bytes(len(text) * 20, f"{jpath}: JSON document")
    try:
        doc = json.loads(text)
        chip = ChipConfig.model_validate(doc["chip"])
        arrays = read_npz(npath)
    except SnnchipError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as e:
        raise MappingFileError(f"{folder}: cannot read the weight-stationary mapping ({type(e).__name__}: {e})") \
            from None
    bad = [k for k, a in arrays.items() if a.dtype.kind not in "biuf"]
    if bad:
        raise MappingFileError(f"{npath}: array '{bad[0]}' is not numeric")
    net = net_from_dict(doc.get("net", {}), arrays, where=str(jpath))
    wmin, wmax = chip.weight_range
    for q in net.projections:
        w = q.csr.data if isinstance(q, SparseProjection) else q.weight
        if w.size and (w.min() < wmin or w.max() > wmax or np.any(w != np.round(w))):
            raise MappingFileError(f"{jpath}: projection '{q.name}': weights outside the chip's integer range "
                                   f"[{wmin}, {wmax}]")
    layers = stationary_layers(net, chip)
    if [lay.to_dict() for lay in layers] != doc.get("layers"):
        raise MappingFileError(f"{jpath}: layers do not match the net's arrays in {NPZ} (write the mapping again)")
    return StationaryMapping(chip, net, layers, str(doc.get("model", "")), list(doc.get("notes", [])),
                             file_sha256=hashlib.sha256(text).hexdigest())


def stationary_layers(net, chip) -> list:
    """One :class:`StationaryLayer` per projection of ``net``, in net order."""
    return [layer_of(q, chip) for q in net.projections]


def map_stationary(net, chip, *, model: str = "", input_note: str = "") -> StationaryMapping:
    """The weight-stationary mapping of a float ``net`` on ``chip`` (module docstring): the
    net is quantised for the chip (``mapper.quantize``) and laid out layer by layer.

    Checks the limits that apply: every population's neuron model and every layer's mode
    (MAC needs ``ANN`` in ``core.modes``), and the cores against ``mesh.width x
    mesh.height x mesh.max_chips``; raises :class:`mapper.validate.MappingError` listing
    every violation.
    """
    from .quantize import quantize
    from .validate import MappingError, Violation

    qnet, qreport = quantize(net, chip)
    layers = stationary_layers(qnet, chip)
    quant = {"table": qreport.table(), **(qreport.summary() if hasattr(qreport, "summary") else {})}
    m = StationaryMapping(chip, qnet, layers, model, [input_note] if input_note else [], quant)
    c = chip.core
    problems = [Violation("neuron_model", p.name, p.name,
                          f"{p.name}: neuron model {p.model} not supported (core has {list(c.neuron_models)})")
                for p in net.populations[1:] if p.model not in c.neuron_models]
    for q in net.projections:
        need = "ANN" if q.mode == "MAC" else "SNN"
        if need not in c.modes:
            problems.append(Violation("mode", q.dst, q.name, f"{q.name}: runs in {q.mode} mode, core supports "
                                                              f"{list(c.modes)}"))
    avail = chip.mesh.width * chip.mesh.height * chip.mesh.max_chips
    r = m.resources()
    if r["cores_used"] > avail:
        problems.append(Violation("cores", "", "system", f"needs {r['cores_used']:,} cores, system has {avail:,}"))
    if problems:
        raise MappingError(problems, model)
    return m


def check_runnable(mapping) -> None:
    """Raise :class:`StationaryError` (one line) when ``mapping`` is weight-stationary:
    ``hwsim.compile`` builds unrolled programs only (a tile per crossbar, a column per
    neuron); ``hwsim.simulate`` runs a weight-stationary mapping with :mod:`hwsim.stationary`."""
    mode = getattr(mapping, "mode", None) or getattr(getattr(getattr(mapping, "chip", None), "core", None),
                                                     "conv_mapping", "unrolled")
    if mode == MODE:
        raise StationaryError(f"{getattr(mapping, 'model', '') or 'this mapping'} uses core.conv_mapping="
                              f"{MODE}; hwsim.compile builds unrolled programs only (hwsim.simulate runs this "
                              f"mapping with hwsim.stationary)")
