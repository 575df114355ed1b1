from .. import hooks  # noqa: F401  (first: process set-up before fairseq is imported)
from .grafusion import GraFusionConfig, GraFusionModel

__all__ = ["GraFusionConfig", "GraFusionModel"]
