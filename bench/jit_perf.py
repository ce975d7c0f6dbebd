"""Where a simulation's time goes, per compiled (Numba) function: ``perf`` with symbols.

``perf`` cannot name Numba's JIT code: it shows ``[JIT] tid N`` and raw addresses. This
script runs a zoo model on the chip with the kernels compiled in this process (a fresh
``NUMBA_CACHE_DIR`` in a temporary folder, unless one is set), writes
``/tmp/perf-PID.map`` (the map file ``perf report`` reads for JIT code) from the
symbol tables of the compiled objects (each overload's ELF object, its function
symbols and sizes; their addresses from the JIT engine), records the timed runs with
``perf record -p PID`` and prints ``perf report``'s table by function. Inlined
functions count in their caller.

Usage: ``python bench/jit_perf.py [--model resnet18] [--shape cifar] [--samples 4]
[--steps 4] [--repeat 8] [--functional] [--out perf.data]`` (needs ``perf``; the first
run compiles every kernel, a few minutes). For source lines add ``NUMBA_DEBUGINFO=1``
and disassemble the dumped object (``--objects DIR``) with ``objdump -d -l``.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def elf_functions(data: bytes) -> list[tuple[str, int]]:
    """(name, size) of every sized function symbol of an ELF64 little-endian object."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for sec in secs:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        strtab = secs[sec[6]][4]
        for k in range(sec[5] // 24):
            name, info, _, _, _, size = struct.unpack_from("<IBBHQQ", data, sec[4] + k * 24)
            if info & 0xF == 2 and size:  # STT_FUNC
                end = data.index(b"\0", strtab + name)
                out.append((data[strtab + name:end].decode(), size))
    return out


def short_name(mangled: str) -> str:
    """``module.function`` from a Numba-mangled symbol (``_ZN`` + length-prefixed names,
    up to the ABI tag)."""
    m = re.match(r"_ZN(?:7cpython)?", mangled)
    if not m:
        return mangled
    i, parts = m.end(), []
    while i < len(mangled) and mangled[i].isdigit():
        j = i
        while mangled[j].isdigit():
            j += 1
        n = int(mangled[i:j])
        parts.append(mangled[j:j + n])
        i = j + n
    return ".".join(parts[-2:]) if parts else mangled


def write_perf_map(packages=("hwsim", "models", "mapper"), objects: Path | None = None) -> int:
    """Write ``/tmp/perf-PID.map`` for the compiled functions of ``packages`` (and their
    ELF objects to ``objects`` if given); returns the number of symbols mapped. Only
    overloads compiled in this process keep their objects (a cache load does not)."""
    from numba.core.registry import CPUDispatcher

    syms: dict[int, tuple[int, str]] = {}
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith(packages):
            continue
        for attr, disp in list(vars(mod).items()):
            if not isinstance(disp, CPUDispatcher):
                continue
            for i, cres in enumerate(disp.overloads.values()):
                lib = cres.library
                try:
                    data = lib._get_compiled_object()  # noqa: SLF001 (numba has no public accessor)
                except Exception:  # loaded from the cache: no object kept
                    continue
                if objects is not None:
                    (objects / f"{mod_name}.{attr}_{i}.o").write_bytes(data)
                for name, size in elf_functions(data):
                    addr = lib.get_pointer_to_function(name)
                    if addr:
                        syms[addr] = (size, short_name(name))
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
        for addr in sorted(syms):
            f.write(f"{addr:x} {syms[addr][0]:x} {syms[addr][1]}\n")
    return len(syms)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--shape", default="cifar")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=8, help="timed simulate calls recorded (default 8)")
    ap.add_argument("--functional", action="store_true", help="record timing=False runs (default: cycle-level)")
    ap.add_argument("--out", default="perf.data")
    ap.add_argument("--objects", default=None, help="folder to write the compiled ELF objects to")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="snnchip-perf-cache-"))
    sys.path.insert(0, str(ROOT))
    from hwsim.chip import load_chip
    from hwsim.engine import simulate
    from hwsim.program import compile as compile_program
    from mapper.mapping import map_model
    from models import lower, zoo

    g = zoo.build(args.model, args.shape, seed=0)
    g = zoo.balance(g, zoo.calibration_inputs(g.input_shape, 8, args.steps, rate=0.2, seed=1))
    prog = compile_program(map_model(lower(g, input_spiking=True), load_chip("tianjic")))
    x = zoo.calibration_inputs(g.input_shape, args.samples, args.steps, rate=0.2, seed=0)
    timing = not args.functional
    simulate(prog, x[:, :1], timing=timing)  # compiles the kernels in this process
    objects = Path(args.objects) if args.objects else None
    if objects is not None:
        objects.mkdir(parents=True, exist_ok=True)
    n = write_perf_map(objects=objects)
    rec = subprocess.Popen(["perf", "record", "-F", "1999", "-p", str(os.getpid()), "-o", args.out],
                           stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    t = time.perf_counter()
    for _ in range(args.repeat):
        simulate(prog, x, timing=timing, timing_samples=args.samples)
    wall = time.perf_counter() - t
    rec.send_signal(2)
    rec.wait()
    print(f"{args.model} ({args.shape}), {args.samples} samples x {args.steps} steps, "
          f"{'functional' if args.functional else 'cycle-level'}, {args.repeat} runs in {wall:.2f} s; "
          f"{n} compiled functions mapped")
    rep = subprocess.run(["perf", "report", "-i", args.out, "--no-children", "--sort", "sym"],
                         capture_output=True, text=True).stdout
    print("\n".join([ln for ln in rep.splitlines() if "%" in ln and not ln.startswith("#")][:args.top]))


if __name__ == "__main__":
    main()
