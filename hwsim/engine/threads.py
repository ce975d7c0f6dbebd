"""The engine's one way of running compiled work on several cores: a Numba function
compiled with ``nogil=True`` called once per group on Python threads.

Why not Numba's ``parallel=True`` (OpenMP): after a parallel region its worker threads
keep spinning (libgomp's default busy wait, ``GOMP_SPINCOUNT`` 300,000 pauses), and on a
2-core machine they then compete with the threads that run the kernel (measured with
``perf`` on the wormhole run of mnist_mlp: 28 % of the process's CPU samples in
``libgomp`` after the input scan was the only parallel region). One mechanism for the
input scan and the kernel keeps the cores for the work."""

from __future__ import annotations

__all__ = ["on_threads"]


def on_threads(fn, n_groups: int, *args) -> None:
    """``fn(g, n_groups, *args)`` for every group ``g < n_groups``, concurrently: group 0 on
    the calling thread, the others on ``n_groups - 1`` new threads (``fn`` must release the
    GIL: ``njit(nogil=True)``). One thread fewer to start and wait for than a pool of
    ``n_groups``: 108-115 us a call against 180-3,900 us (medians of 200 calls of a tiny
    kernel on a loaded 2-core machine). An exception in any group is raised here."""
    if n_groups <= 1:
        fn(0, 1, *args)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n_groups - 1) as ex:
        fs = [ex.submit(fn, g, n_groups, *args) for g in range(1, n_groups)]
        fn(0, n_groups, *args)
        for f in fs:
            f.result()
