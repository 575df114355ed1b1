from . import word_graph
from .sa_graph import AGGREGATIONS, AlignmentGate, DependencyGAT, SAGraph
from .sa_transformer import SATransformerLayer
from .transformer_layer import SelfAttention, TransformerLayer

__all__ = ["AGGREGATIONS", "AlignmentGate", "DependencyGAT", "SAGraph", "SATransformerLayer",
           "SelfAttention", "TransformerLayer", "word_graph"]
