from .sa_graph_pretrain import SAGraphPretrainCriterion
from .self_teaching import SelfTeachingCriterion
from .xmrc_span import XMRCSpanCriterion

__all__ = ["SAGraphPretrainCriterion", "SelfTeachingCriterion", "XMRCSpanCriterion"]
