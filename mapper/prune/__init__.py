r"""Crossbar-aware pruning (Liang, Deng et al., IEEE Access 2018): remove whole crossbars.

This package owns the step ``Graph -> pruned Graph`` that makes a network need fewer
crossbars on a chip (docs/design.md). It works on the NIR weights
of a feed-forward chain ``Input -> (Conv2d | Affine | Linear) -> neurons -> [pool]
[flatten] -> ... -> Output`` and on the crossbar structure :mod:`mapper.tiling` gives it.

Modules, one job each
---------------------
``pruner``      the pass :func:`prune`: the budget over layers (:func:`allocate`), the request check
``layers``      which layers are prunable and their crossbar structure (:func:`analyse`), :class:`PruneError`
``scores``      importance of the weights (:func:`importance`) and unit rates for ``score="activation"``
``select``      the selection solve: kept (block, chunk) pairs and the column / input orders
``permute``     graph rewriting: renumber a population without changing the function
``finetuning``  the L0 projection and fine-tuning under the crossbar budget
``stationary``  pruning on the weight-stationary mapping with the paper's packing, and the
                savings of VGG-8 / VGG-16 / ResNet-18 on both denominators (:func:`stationary.paper_savings`)
"""

from .finetuning import finetune, project
from .layers import Layer, PruneError, analyse
from .permute import permute_population
from .pruner import GRAINS, PruneResult, allocate, check_request, prune
from .scores import SCORES, importance, unit_rates
from .select import Solution, solve, top_pairs

__all__ = ["prune", "finetune", "project", "analyse", "allocate", "check_request", "importance", "unit_rates",
           "solve", "top_pairs", "permute_population", "Layer", "Solution", "PruneResult", "PruneError",
           "GRAINS", "SCORES"]
