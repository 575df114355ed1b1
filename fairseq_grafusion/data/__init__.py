from .graph_masking import GraphMaskingDataset
from .graph_pair_dataset import GraphPairDataset, example_graph
from .pair_binary import PairList, PairReader, PairWriter, check_example

__all__ = ["GraphMaskingDataset", "GraphPairDataset", "PairList", "PairReader", "PairWriter", "check_example",
           "example_graph"]
