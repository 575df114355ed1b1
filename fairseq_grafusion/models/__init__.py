from .grafusion import GraFusionConfig, GraFusionModel

__all__ = ["GraFusionConfig", "GraFusionModel"]
