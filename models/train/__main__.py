"""``python -m models.train mlp|cnn``: see :mod:`models.train.cli`."""

from .cli import main

raise SystemExit(main())
