from .xmrc_span import XMRCSpanCriterion

__all__ = ["XMRCSpanCriterion"]
