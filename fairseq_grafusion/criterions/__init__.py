from .. import hooks
from .sa_graph_pretrain import SAGraphPretrainCriterion
from .self_teaching import SelfTeachingCriterion
from .xmrc_span import XMRCSpanCriterion

__all__ = ["SAGraphPretrainCriterion", "SelfTeachingCriterion", "XMRCSpanCriterion"]

hooks.install()  # what the plugin changes in the process (hooks.py)
