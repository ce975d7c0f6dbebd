r"""Train the zoo's spiking MNIST classifiers in pure numpy and export them as NIR.

Method: an ANN with QCFS activations is trained (:mod:`.layers`, :mod:`.loop`), then
converted to an IF-neuron SNN (:mod:`.conversion`); :mod:`.cli` is the command line
``python -m models.train mlp|cnn`` (``--dev`` for hyper-parameter work). Each module's
docstring states its equations.

Reproducibility: every random draw comes from ``numpy.random.default_rng(seed)``;
the same command on the same machine (same BLAS, same thread count) rewrites the
same weights. The shipped ``mnist_cnn.nir`` was trained with an earlier im2col
convolution whose float32 rounding differs slightly from :mod:`models.ops`, so
rerunning ``python -m models.train cnn`` now gives close but not bit-identical
weights (``mnist_mlp.nir`` has no convolution and is unaffected).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # the build machine has 2 cores

from ..defaults import DEV_SLICES, HELD_OUT_SLICE, TRAIN_SLICE  # noqa: E402
from ..defaults import STEPS as DEFAULT_STEPS  # noqa: E402
from .cli import DEFAULTS, TARGETS, ZOO_DIR, main  # noqa: E402
from .conversion import convert, hybridize, model_from_graph, snn_accuracy  # noqa: E402
from .layers import (  # noqa: E402
    ARCHITECTURES, QCFS, AvgPool, Conv, Dense, Dropout, Flatten, Layer, Model, build_model,
)
from .loop import TrainConfig, augment, finetune, mean_loss, softmax_cross_entropy, train  # noqa: E402

__all__ = ["TRAIN_SLICE", "HELD_OUT_SLICE", "DEV_SLICES", "DEFAULT_STEPS", "DEFAULTS", "TARGETS", "ZOO_DIR",
           "main", "convert", "hybridize", "model_from_graph", "snn_accuracy", "ARCHITECTURES", "Layer", "Dense", "Conv",
           "AvgPool", "Flatten", "QCFS", "Dropout", "Model", "build_model", "TrainConfig", "augment",
           "softmax_cross_entropy", "train", "finetune", "mean_loss"]
