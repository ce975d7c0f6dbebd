"""The model zoo: seeded random-weight builders of standard networks (``builders``),
data-based threshold balancing for realistic activity (``balance``) and the shipped
trained models (``trained/*.nir``)."""

from .balance import balance, calibration_inputs, smooth_images  # noqa: F401
from .builders import BUILDERS, build, lenet5, list_models, mlp, resnet18, totals, vgg8, vgg11, vgg16  # noqa: F401
