"""bench/jit_perf.py's symbol names (the perf map it writes names Numba's functions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "bench" / "jit_perf.py"
_spec = importlib.util.spec_from_file_location("jit_perf", _PATH)
jit_perf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(jit_perf)


def test_short_names_from_numba_symbols():
    assert jit_perf.short_name("_ZN5hwsim6engine13timing_spikes11send_spikesB4v430B40c8tJTIeFIjx") == \
        "timing_spikes.send_spikes"
    assert jit_perf.short_name("_ZN7cpython5hwsim6engine6kernel7_sampleB4v102B40") == "kernel._sample"
    assert jit_perf.short_name("_ZN3noc8run_intoE") == "noc.run_into"
    assert jit_perf.short_name("NRT_incref") == "NRT_incref"


def test_elf_functions_of_an_object():
    """The function symbols (name, size) of a native object, as the perf map needs them."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    mod = llvm.parse_assembly("define i64 @twice(i64 %x) {\n  %y = add i64 %x, %x\n  ret i64 %y\n}\n"
                              "define i64 @thrice(i64 %x) {\n  %y = mul i64 %x, 3\n  ret i64 %y\n}\n")
    obj = llvm.Target.from_default_triple().create_target_machine().emit_object(mod)
    funcs = dict(jit_perf.elf_functions(obj))
    assert set(funcs) == {"twice", "thrice"} and all(size > 0 for size in funcs.values())
