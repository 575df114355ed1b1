from .filter import FilterConfig, FilterModel
from .grafusion import GraFusionConfig, GraFusionModel

__all__ = ["FilterConfig", "FilterModel", "GraFusionConfig", "GraFusionModel"]
