"""The semantics a training framework gives a NIR graph that NIR itself does not carry.

NIR leaves spike mode, reset, membrane floor and threshold comparison open; every
framework fixes them its own way, and an export drops them. :data:`SOURCES` is the one
table of those defaults (``--source`` on the command line), :func:`detect_source` guesses
the framework from a graph's metadata or node names, :func:`source_options` gives the
simulation options (``reset``, ``spikes``, ``v_min``) of a source.

Fields of an entry: ``spikes`` (``binary`` / ``multi``), ``reset`` (``subtract`` /
``zero``), ``v_min`` (membrane floor: None, a number or ``"-threshold"``; see
:mod:`models.reference`), ``compare`` (``>=`` or ``>``: when a neuron fires; the
simulators fire at ``v >= theta``, so ``>`` differs only when v equals theta exactly),
``basis`` (where each value was read) and ``dt`` (the time unit its exports assume).
"""

from __future__ import annotations

from .errors import ParameterError

SOURCES = {
    "sinabs": {"spikes": "multi", "reset": "subtract", "v_min": "-threshold", "compare": ">=", "dt": "1 (unit steps)",
               "basis": "sinabs 3.1: IAF default spike_fn MultiSpike (trunc(v / theta) for v > 0), reset "
                        "MembraneSubtract, min_v_mem clipped after the reset (layers/functional/lif.py); "
                        "sinabs.from_nir builds IAFSqueeze(min_v_mem=-v_threshold) for an IF node (nir.py)"},
    "speck": {"spikes": "multi", "reset": "subtract", "v_min": "-threshold", "compare": ">=", "dt": "1 (unit steps)",
              "basis": "Sinabs' chip flow for Speck / DYNAP-CNN (the layers of sinabs, floor -1 x threshold); "
                       "one spike per neuron per step on the chip itself is not modelled [assumption]"},
    "snntorch": {"spikes": "binary", "reset": "zero", "v_min": None, "compare": ">", "dt": "seconds (1e-4 in its "
                 "NIR import)",
                 "basis": "snntorch 1.0 import_nir: Leaky / Synaptic with reset_mechanism='zero', reset_delay=False, "
                          "beta = 1 - dt / tau with dt = 1e-4; Heaviside fires at mem - threshold > 0"},
    "norse": {"spikes": "binary", "reset": "zero", "v_min": None, "compare": ">", "dt": "seconds (from_nir dt "
              "argument, default 1e-3)",
              "basis": "norse 1.1 import_nir: LIFBoxCell / CubaLIF with v_reset from the node; heaviside(v - v_th) "
                       "fires at > 0 (functional/heaviside.py)"},
    "rockpool": {"spikes": "multi", "reset": "subtract", "v_min": None, "compare": ">=", "dt": "seconds",
                 "basis": "Rockpool LIF: max_spikes_per_dt > 1 allowed and subtractive reset [assumption: not "
                          "read from its code here]"},
    "lava-dl": {"spikes": "binary", "reset": "zero", "v_min": None, "compare": ">=", "dt": "1 (unit steps)",
                "basis": "lava-dl CUBA neuron: binary spikes, reset to zero [assumption: not read from its code here]"},
}


def source_options(name: str) -> dict:
    """``{"reset", "spikes", "v_min"}`` of a source in :data:`SOURCES`; raises ParameterError naming the choices."""
    if name not in SOURCES:
        raise ParameterError(f"unknown source {name!r}; known: {', '.join(SOURCES)} (--source)")
    e = SOURCES[name]
    return {"reset": e["reset"], "spikes": e["spikes"], "v_min": e["v_min"]}


def detect_source(graph) -> tuple[str | None, str]:
    """(source, how) guessed from the graph: a metadata field ``source`` / ``framework`` /
    ``exported_by`` naming one of :data:`SOURCES`; else Sinabs' export pattern (integer node
    names with IF neurons and no dt); else (None, why not)."""
    meta = getattr(graph, "metadata", {}) or {}
    for key in ("source", "framework", "exported_by"):
        v = str(meta.get(key, "")).lower()
        for name in SOURCES:
            if name in v:
                return name, f"metadata {key} = {meta[key]!r}"
    from .graph import node_type

    nodes = getattr(graph, "nodes", None) or {}  # a mapping's net metadata has no nodes
    names = [n for n, nd in nodes.items() if node_type(nd) not in ("Input", "Output")]
    types = {node_type(nodes[n]) for n in names}
    if names and all(n.isdigit() for n in names) and "IF" in types:
        return "sinabs", "node names are module indices with IF neurons (Sinabs' export)"
    return None, "no framework named in the metadata and no known node-name pattern"


__all__ = ["SOURCES", "source_options", "detect_source"]
