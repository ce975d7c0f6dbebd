"""The model zoo: seeded random-weight builders of standard networks (``builders``)
and the shipped trained models (``trained/*.nir``)."""

from .builders import BUILDERS, build, lenet5, list_models, mlp, resnet18, totals, vgg8, vgg11, vgg16  # noqa: F401
