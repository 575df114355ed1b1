"""The data side of the plugin: binarized splits (:mod:`.pair_binary`), the answer-span target
(:mod:`.span_target`), the datasets the tasks batch (:mod:`.graph_pair_dataset`,
:mod:`.graph_masking`), the languages of a split (:mod:`.languages`) and fingerprints.

Streams are named ``src`` (the English side: question and passage in English, original or
translated) and ``tgt`` (the target language, whose answers are evaluated), in the model, the
binary format and the batches alike (docs/design.md, "Naming").  The datasets are imported on
first use, so that the pipeline's small modules (:mod:`.span_target`, :mod:`.languages`) import
without torch.
"""
import importlib

_HOMES = {"GraphMaskingDataset": "graph_masking", "GraphPairDataset": "graph_pair_dataset",
          "example_graph": "graph_pair_dataset", "PairList": "pair_binary",
          "PairReader": "pair_binary", "PairWriter": "pair_binary", "check_example": "pair_binary"}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
