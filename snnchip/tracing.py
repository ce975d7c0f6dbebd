"""``snnchip run``'s trace and recording options, turned into per-batch trace configurations.

The run executes in batches; a VCD and a Chrome timeline follow one sample
(``--trace-sample``), so only the batch that holds it traces, with the sample's index
inside that batch. An AER trace covers every sample: the run then goes as one engine
call, which chunks its samples itself with bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.errors import SnnchipError


def _steps_window(text: str | None, T: int) -> tuple[int, int] | None:
    if text is None:
        return None
    a, sep, b = text.partition(":")
    try:
        lo = int(a) if a.strip() else 0
        hi = int(b) if b.strip() else T
    except ValueError:
        raise SnnchipError(f"--trace-steps must be A:B (steps A..B-1), got {text!r}") from None
    if not sep or not 0 <= lo < hi <= T:
        raise SnnchipError(f"--trace-steps {text!r}: need 0 <= A < B <= {T} steps")
    return lo, hi


def _int_list(text: str | None, what: str) -> tuple:
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SnnchipError(f"{what} must be comma-separated integers, got {text!r}") from None


@dataclass
class TraceRequest:
    """What ``snnchip run`` records and traces (see the module docstring)."""

    config: object            # traces.TraceConfig, sample index global to the run
    record: list | str | None
    sample: int
    timed_samples: int        # timing must cover samples 0..timed_samples-1
    one_call: bool            # an AER trace: run every sample in one engine call

    def batches(self, B: int, batch: int):
        if self.one_call:
            return [(0, B)]
        return [(lo, min(B, lo + batch)) for lo in range(0, B, batch)]

    def config_for(self, lo: int, hi: int):
        cfg = self.config
        if not cfg.enabled:
            return None
        inside = lo <= self.sample < hi
        return replace(cfg, vcd=cfg.vcd if inside else None, chrome=cfg.chrome if inside else None,
                       vcd_sample=self.sample - lo if inside else 0, timeline_sample=self.sample - lo if inside else 0,
                       aer=cfg.aer if self.one_call else None)

    @staticmethod
    def written(parts) -> dict:
        out = {}
        for r in parts:
            out.update(r.meta.get("traces") or {})
        return out


def trace_request(args, mapping, B: int, T: int) -> TraceRequest:
    """Check the trace options of ``snnchip run`` against the mapping and the data."""
    from traces import TraceConfig

    pops = [p.name for p in mapping.net.populations[1:]]
    record = None
    if args.record:
        names = [n.strip() for item in args.record for n in item.split(",") if n.strip()]
        if names == ["all"]:
            record = "all"
        else:
            bad = [n for n in names if n not in pops]
            if bad:
                raise SnnchipError(f"--record: unknown population(s) {', '.join(bad)}; the mapping has "
                                   f"{', '.join(pops)} (or 'all')")
            record = names
    sample = args.trace_sample
    if not 0 <= sample < B:
        raise SnnchipError(f"--trace-sample {sample} is outside the run's {B} samples")
    neurons = tuple(n for item in (args.vcd_neurons or []) for n in item.split(";") if n.strip())
    cores = _int_list(args.vcd_cores, "--vcd-cores")
    stationary = mapping.chip.core.conv_mapping == "weight_stationary"  # no tiles; it writes no traces
    n_cores = mapping.resources()["cores_used"] if stationary else len(mapping.tiling.cores)
    bad = [c for c in cores if not 0 <= c < n_cores]
    if bad:
        raise SnnchipError(f"--vcd-cores {bad[0]}: the mapping has cores 0..{n_cores - 1}")
    if args.vcd and not (cores or neurons):
        cores = (0,)  # the first core: a small, useful default
    if (cores or neurons) and not args.vcd:
        raise SnnchipError("--vcd-cores / --vcd-neurons need --vcd FILE")
    if args.trace_steps and not (args.vcd or args.chrome):
        raise SnnchipError("--trace-steps needs --vcd FILE or --chrome FILE")
    cfg = TraceConfig(aer=args.aer, vcd=args.vcd, chrome=args.chrome, aer_include_input=bool(args.aer_input),
                      vcd_cores=cores, vcd_neurons=neurons, vcd_sample=sample, timeline_sample=sample,
                      steps=_steps_window(args.trace_steps, T))
    timed = sample + 1 if (args.vcd or args.chrome) else 0
    return TraceRequest(cfg, record, sample, timed, one_call=args.aer is not None)
