# fairseq's --user-dir imports only tasks/ and models/: the criteria are registered from here
from .. import criterions, hooks  # noqa: F401  (criterions: registration)
from .sa_graph_pretrain import SAGraphPretrainTask
from .xmrc_span import XMRCSpanTask

__all__ = ["SAGraphPretrainTask", "XMRCSpanTask"]

hooks.install()  # fairseq's --user-dir imports this package: what the plugin changes (hooks.py)
