"""Let torch >= 2.6 (``weights_only=True`` by default) load fairseq checkpoints.

fairseq stores its configuration inside every checkpoint: an ``argparse.Namespace`` (XLM-R's
``model.pt``, and a new checkpoint's criterion config), omegaconf containers in some versions, and
numpy scalars for best scores.  ``weights_only`` loading refuses those classes, so ``fairseq-train``
could neither resume from its own ``checkpoint_last.pt`` nor load XLM-R.  Rather than ask users
for ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``, the plugin allow-lists exactly those classes with
``torch.serialization.add_safe_globals``; everything else stays refused.
"""
import argparse

import numpy as np
import torch


def fairseq_checkpoint_globals():
    """The non-tensor classes found in fairseq checkpoints."""
    from omegaconf import DictConfig, ListConfig
    from omegaconf.base import ContainerMetadata, Metadata
    from omegaconf.nodes import AnyNode

    found = [argparse.Namespace, DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    if multiarray is not None:  # numpy >= 2: best scores saved as numpy scalars
        found += [multiarray.scalar, np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType,
                  np.dtypes.Int64DType]
    return found


def allow_fairseq_checkpoints():
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # older torch loads everything anyway
        add(fairseq_checkpoint_globals())
