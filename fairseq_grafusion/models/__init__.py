from .. import hooks
from .filter import FilterConfig, FilterModel
from .grafusion import GraFusionConfig, GraFusionModel

__all__ = ["FilterConfig", "FilterModel", "GraFusionConfig", "GraFusionModel"]

hooks.install()  # fairseq's --user-dir imports this package: what the plugin changes (hooks.py)
