"""snnchip: map trained SNNs onto many-core crossbar chips, simulate them cycle by cycle, report energy.

The flow a notebook needs (:mod:`snnchip.api`): ``load`` a model, ``load_chip``,
``map`` it, ``run`` it on the chip simulator, ``estimate`` or ``report`` its energy;
``sweep`` a grid of chip fields on Dask (:mod:`snnchip.sweep`), ``run_sharded`` a
large run over a cluster.
The packages behind it: ``models`` (IR, NIR, references), ``mapper`` (passes),
``hwsim`` (chip config and simulator), ``energy`` (tables, views, reports), ``traces``.
"""

from .api import estimate, load, load_chip, map, report, run  # noqa: A004 - ``snnchip.map`` is the API's name
from .sweep import run_sharded, sweep  # noqa: E402 - after the API it builds on

__all__ = ["load", "load_chip", "map", "run", "estimate", "report", "sweep", "run_sharded"]
