"""snnchip: map trained SNNs onto many-core crossbar chips, simulate them cycle by cycle, report energy.

The flow a notebook needs (:mod:`snnchip.api`): ``load`` a model, ``load_chip``,
``map`` it, ``run`` it on the chip simulator, ``estimate`` or ``report`` its energy.
The packages behind it: ``models`` (IR, NIR, references), ``mapper`` (passes),
``hwsim`` (chip config and simulator), ``energy`` (tables, views, reports), ``traces``.
"""

from .api import estimate, load, load_chip, map, report, run  # noqa: A004 - ``snnchip.map`` is the API's name

__all__ = ["load", "load_chip", "map", "run", "estimate", "report"]
