from .. import hooks  # noqa: F401  (first: process set-up before fairseq is imported)
from .filter import FilterConfig, FilterModel
from .grafusion import GraFusionConfig, GraFusionModel

__all__ = ["FilterConfig", "FilterModel", "GraFusionConfig", "GraFusionModel"]
