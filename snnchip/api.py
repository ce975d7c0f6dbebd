"""The notebook flow in five calls, with the graph's metadata as defaults, as the CLI uses them.

>>> import snnchip
>>> g = snnchip.load("mnist_mlp")                        # a NIR file, shipped model or zoo builder
>>> chip = snnchip.load_chip("tianjic", {"core.axons": 128})
>>> m = snnchip.map(g, chip)                             # quantize, tile, place, route, validate
>>> r = snnchip.run(m, samples=20)                       # the chip simulator on held-out data
>>> e = snnchip.estimate(r, m, table="horowitz45-fp32", view="paper")

``run`` takes the data as the CLI does (``data="mnist"|"nmnist"|"FILE.npz"``, or an
input array ``(T, B, *input_shape)``), reads reset and spike mode from the model's
metadata unless given, and records accuracy when labels are known. ``report``
writes the full energy report of a run.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from models.errors import SnnchipError


def load(model):
    """A :class:`models.Graph` from a ``.nir`` path, a shipped model name or a zoo builder (``vgg16:cifar``)."""
    from models import Graph
    from models.zoo.catalog import load as _load

    return model if isinstance(model, Graph) else _load(str(model))


def load_chip(chip="tianjic", overrides: dict | None = None):
    """A :class:`hwsim.chip.ChipConfig` from a preset or file, with dotted overrides (named after them)."""
    from hwsim.chip import load_chip as _load_chip

    c = _load_chip(chip)
    return c.with_overrides(overrides) if overrides else c


def map(model, chip="tianjic", *, placement: str = "rowmajor", max_fold: int | None = None, rates=None,
        seed: int = 0, input_spiking: bool | None = None):
    """:func:`mapper.mapping.map_model` of a model spec or graph on a chip spec or config."""
    from mapper.mapping import map_model
    from models import lower

    g = load(model)
    name = model if isinstance(model, str) else str(g.metadata.get("model", ""))
    net = lower(g, input_spiking=input_spiking)
    return map_model(net, load_chip(chip), placement=placement, rates=rates, max_fold=max_fold, seed=seed,
                     model=name)


def _mapping_model(mapping):
    net = mapping.net
    return SimpleNamespace(input_shape=tuple(net.input.shape), metadata=dict(net.metadata or {}))


def run(mapping, inputs=None, *, data: str | None = None, samples: int = 100, steps: int | None = None,
        reset: str | None = None, spikes: str | None = None, v_min=None, timing: bool = True,
        timing_samples: int = 1, batch: int = 128, record=None, trace=None):
    """Run ``mapping`` on the chip simulator; returns a :class:`hwsim.result.RunResult`.

    ``inputs``: an array (T, B, *input_shape); else ``data`` (default: by the input
    shape) with ``samples`` and ``steps``. Batches of ``batch`` samples are merged
    exactly (:func:`hwsim.result.merge_results`). With labels, ``meta["accuracy"]``.
    ``v_min``: the membrane floor (None, a number <= 0 or ``"-threshold"``; default the
    net's metadata ``v_min``, else none), as :func:`hwsim.engine.simulate`.
    """
    from hwsim.engine import simulate
    from hwsim.result import merge_results

    from .inputs import load_data, modes

    model = _mapping_model(mapping)
    reset_, spikes_ = modes(model, SimpleNamespace(reset=reset, spikes=spikes))
    v_min = model.metadata.get("v_min") if v_min is None else v_min
    labels = None
    if inputs is None:
        enc = None if mapping.net.input_spiking else "direct"
        _, seq = load_data(model, data, samples, steps, enc)
        x, labels = seq.inputs, seq.labels
    else:
        x = np.asarray(inputs)
    B = x.shape[1] if x.ndim >= 2 else 0
    if B < 1:
        raise SnnchipError(f"inputs must be (T, B, *{model.input_shape}) with B >= 1, got shape {x.shape}")
    if trace is not None and B > batch:
        batch = B  # one engine call: traces follow one run
    parts = []
    for lo in range(0, B, batch):
        hi = min(B, lo + batch)
        nt = max(0, min(timing_samples, hi) - lo) if timing else 0
        parts.append(simulate(mapping, x[:, lo:hi], reset=reset_, spikes=spikes_, v_min=v_min, timing=nt > 0,
                              timing_samples=max(nt, 1), record=record, trace=trace))
    r = merge_results(parts)
    r.meta["model"] = mapping.model
    if labels is not None:
        r.meta["labels"] = [int(v) for v in labels]
        r.meta["accuracy"] = r.accuracy(labels)
    return r


def estimate(result, mapping, *, table: str | None = None, view: str = "paper"):
    """:func:`energy.estimate.estimate` of a run (default table: :data:`models.defaults.ENERGY_TABLE`)."""
    from energy.estimate import estimate as _estimate
    from models import defaults

    return _estimate(result, table or defaults.ENERGY_TABLE, view, mapping=mapping)


def report(result, mapping, out_dir, *, tables=None):
    """The energy report of a run (Markdown, LaTeX, CSV, JSON, figures) into ``out_dir``; returns the files."""
    from energy import report as _report
    from models import defaults

    tables = list(tables or defaults.ENERGY_TABLES)
    return _report(result, mapping, out_dir, tables=tables, figure_table=tables[0])


__all__ = ["load", "load_chip", "map", "run", "estimate", "report"]
