from .xmrc_span import XMRCSpanTask

__all__ = ["XMRCSpanTask"]
