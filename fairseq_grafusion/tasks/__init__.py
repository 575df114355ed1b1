# fairseq's --user-dir imports only tasks/ and models/: the criteria are registered from here
from .. import criterions, hooks  # noqa: F401
from .sa_graph_pretrain import SAGraphPretrainTask
from .xmrc_span import XMRCSpanTask

__all__ = ["SAGraphPretrainTask", "XMRCSpanTask"]
