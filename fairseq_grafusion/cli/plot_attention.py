"""``grafusion-plot-attention``: heatmaps like the paper's Figure 5 for one example.

    grafusion-plot-attention --path CKPT --data DATA --split valid --id QID --output fig.png

Left: the attention of the last fusion (SA-Transformer) layer from every target token (rows) to
every source token (columns), averaged over heads (``--head K`` for one head).  Right: the SA-Graph
bias ``G`` of that layer over the same cells (absent for ``--graph none``).  Answer tokens are marked
on both axes.  The PNG is exactly ``--width`` x ``--height`` inches at ``--dpi``.
"""
import argparse
import logging
import os
from dataclasses import dataclass
from typing import Optional

from ..console import run, setup_logging
from ..errors import GraFusionError
from ..files import resolved

logger = logging.getLogger("grafusion-plot-attention")


def get_parser():
    p = argparse.ArgumentParser(prog="grafusion-plot-attention",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--path", required=True, help="checkpoint of an xmrc_span model")
    p.add_argument("--data", required=True, help="binarized data directory")
    p.add_argument("--split", default="valid")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--id", help="question id (its first window)")
    which.add_argument("--index", type=int, default=0, help="example index in the split")
    p.add_argument("--head", type=int, help="plot one head instead of the mean over heads")
    p.add_argument("--output", required=True, help="PNG file to write")
    p.add_argument("--width", type=float, default=14.0, help="inches")
    p.add_argument("--height", type=float, default=7.0, help="inches")
    p.add_argument("--dpi", type=int, default=100)
    return p


@dataclass
class PlotConfig:
    """The options of ``grafusion-plot-attention`` (see ``--help``), checked once."""

    path: str
    data: str
    output: str
    split: str = "valid"
    id: Optional[str] = None
    index: int = 0
    head: Optional[int] = None
    width: float = 14.0
    height: float = 7.0
    dpi: int = 100

    def __post_init__(self):
        self.path, self.data, self.output = map(resolved, (self.path, self.data, self.output))
        for name, value in (("--width", self.width), ("--height", self.height), ("--dpi", self.dpi)):
            if value <= 0:
                raise GraFusionError(f"{name} must be positive, got {value}")


def main(argv=None):
    cfg = PlotConfig(**vars(get_parser().parse_args(argv)))
    setup_logging()
    from ..data import GraphPairDataset, PairReader
    from ..data.span_target import NO_ANSWER, SPAN_FIELD, span_target, stream_span
    from ..figures import attention_maps, plot
    from ..inference import load_model

    model, task = load_model(cfg.path, cfg.data)
    if not model.fusion:
        raise GraFusionError("a --no-fusion model has no fusion layer between the languages to plot")
    reader = PairReader(os.path.join(cfg.data, cfg.split))
    index = cfg.index
    if cfg.id is not None:
        if cfg.id not in reader.ids:
            raise GraFusionError(f"question id {cfg.id!r} is not in {reader.prefix}")
        index = reader.ids.index(cfg.id)
    if not 0 <= index < len(reader):
        raise GraFusionError(f"--index {index}: {reader.prefix} has {len(reader)} examples")
    dataset = GraphPairDataset(reader, task.source_dictionary.pad(), shuffle=False)
    sample = dataset.collater([dataset[index]])
    attn, graph = attention_maps(model, sample, cfg.head)
    d = task.source_dictionary
    example = dataset[index]
    target = example.get(SPAN_FIELD, span_target(NO_ANSWER, NO_ANSWER))
    plot(attn, graph, [d[t] for t in example["src.tok"]], [d[t] for t in example["tgt.tok"]],
         stream_span(target, "src"), stream_span(target, "tgt"), cfg.output,
         cfg.width, cfg.height, cfg.dpi, title=f"{reader.ids[index]} ({cfg.split})")
    logger.info("wrote %s", cfg.output)


def cli_main(argv=None):
    run("grafusion-plot-attention", main, argv)


if __name__ == "__main__":
    cli_main()
