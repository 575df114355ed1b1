from .sa_graph_pretrain import SAGraphPretrainCriterion
from .xmrc_span import XMRCSpanCriterion

__all__ = ["SAGraphPretrainCriterion", "XMRCSpanCriterion"]
