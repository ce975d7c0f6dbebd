"""The Numba cache is dropped when any source of the cached kernels changes (models.jitcache)."""

from __future__ import annotations

from models import jitcache


def test_stale_cache_files_are_removed_when_a_source_changes(tmp_path, monkeypatch):
    root = tmp_path
    for pkg in jitcache.PACKAGES:
        (root / pkg / "__pycache__").mkdir(parents=True)
        (root / pkg / "a.py").write_text("x = 1\n")
        (root / pkg / "__pycache__" / "a.f-1.py311.nbi").write_text("index")
        (root / pkg / "__pycache__" / "a.f-1.py311.1.nbc").write_text("code")
        (root / pkg / "__pycache__" / "a.cpython-311.pyc").write_text("bytecode")
    monkeypatch.setattr(jitcache, "ROOT", root)
    monkeypatch.setattr(jitcache, "STAMP", root / "models" / "__pycache__" / "stamp")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert jitcache.check()  # no stamp yet: cleared
    assert not list(root.rglob("*.nb[ic]")) and len(list(root.rglob("*.pyc"))) == len(jitcache.PACKAGES)
    (root / "hwsim" / "__pycache__" / "k.g-2.py311.nbi").write_text("index")
    assert not jitcache.check()  # same sources: the cache is kept
    assert (root / "hwsim" / "__pycache__" / "k.g-2.py311.nbi").exists()
    (root / "models" / "a.py").write_text("x = 2\n")  # an inlined helper changes
    assert jitcache.check() and not list(root.rglob("*.nb[ic]"))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "elsewhere"))
    (root / "models" / "a.py").write_text("x = 3\n")
    assert not jitcache.check()  # a user-managed cache directory is left alone
