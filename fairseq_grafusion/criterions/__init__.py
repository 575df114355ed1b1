from .. import hooks  # noqa: F401  (first: process set-up before fairseq is imported)
from .sa_graph_pretrain import SAGraphPretrainCriterion
from .self_teaching import SelfTeachingCriterion
from .xmrc_span import XMRCSpanCriterion

__all__ = ["SAGraphPretrainCriterion", "SelfTeachingCriterion", "XMRCSpanCriterion"]
