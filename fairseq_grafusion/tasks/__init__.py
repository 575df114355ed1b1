from .sa_graph_pretrain import SAGraphPretrainTask
from .xmrc_span import XMRCSpanTask

__all__ = ["SAGraphPretrainTask", "XMRCSpanTask"]
