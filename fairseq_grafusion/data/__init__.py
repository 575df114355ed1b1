from .graph_masking import GraphMaskingDataset
from .graph_pair_dataset import GraphPairDataset, example_graph
from .pair_binary import PairReader, PairWriter, check_example

__all__ = ["GraphMaskingDataset", "GraphPairDataset", "PairReader", "PairWriter", "check_example",
           "example_graph"]
