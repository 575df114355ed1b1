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

from ..errors import GraFusionError
from . import run, setup_logging

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


def attention_maps(model, sample, head=None):
    """Target-to-source attention (lt, ls) of the last SA layer and G over the same cells."""
    import torch  # here, not at the top: --help needs neither torch nor fairseq

    with torch.no_grad():
        out = model(**sample["net_input"], return_attention=True)
    len_s = sample["net_input"]["src_tokens"].size(1)
    attn = out["attn"][0].float()
    if head is not None:
        if not 0 <= head < attn.size(0):
            raise GraFusionError(f"--head {head}: the model has {attn.size(0)} heads")
        attn = attn[head]
    else:
        attn = attn.mean(0)
    graph = out.get("graph_bias")
    cut = (slice(len_s, None), slice(0, len_s))
    return attn[cut], (graph[0].float()[cut] if graph is not None else None)


def plot(attn, graph, src_labels, tgt_labels, src_answer, tgt_answer, path, width, height, dpi,
         title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("attention (last fusion layer)", attn)] + ([("SA-Graph bias G", graph)]
                                                         if graph is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(width, height), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels):
        im = ax.imshow(values.numpy(), aspect="auto", cmap="viridis")
        ax.set_title(name)
        ax.set_xticks(range(len(src_labels)))
        ax.set_xticklabels(src_labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(tgt_labels)))
        ax.set_yticklabels(tgt_labels, fontsize=6)
        ax.set_xlabel("source (English) tokens")
        ax.set_ylabel("target tokens")
        for i in range(src_answer[0], src_answer[1] + 1):
            ax.get_xticklabels()[i].set_color("tab:orange")
        for i in range(tgt_answer[0], tgt_answer[1] + 1):
            ax.get_yticklabels()[i].set_color("tab:green")
        fig.colorbar(im, ax=ax, fraction=0.04)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.15, top=0.9, wspace=0.3)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    import fairseq_grafusion  # noqa: F401

    from ..data import GraphPairDataset, PairReader
    from .predict import load_model

    model, task = load_model(args.path, args.data)
    if not model.fusion:
        raise GraFusionError("a --no-fusion model has no fusion layer between the languages to plot")
    reader = PairReader(os.path.join(args.data, args.split))
    index = args.index
    if args.id is not None:
        if args.id not in reader.ids:
            raise GraFusionError(f"question id {args.id!r} is not in {reader.prefix}")
        index = reader.ids.index(args.id)
    if not 0 <= index < len(reader):
        raise GraFusionError(f"--index {index}: {reader.prefix} has {len(reader)} examples")
    dataset = GraphPairDataset(reader, task.source_dictionary.pad(), shuffle=False)
    sample = dataset.collater([dataset[index]])
    attn, graph = attention_maps(model, sample, args.head)
    d = task.source_dictionary
    example = dataset[index]
    spans = example.get("span", [0, 0, 0, 0])
    plot(attn, graph, [d[t] for t in example["src.tok"]], [d[t] for t in example["tgt.tok"]],
         (int(spans[0]), int(spans[1])), (int(spans[2]), int(spans[3])), args.output,
         args.width, args.height, args.dpi, title=f"{reader.ids[index]} ({args.split})")
    logger.info("wrote %s", args.output)


def cli_main(argv=None):
    run("grafusion-plot-attention", main, argv)


if __name__ == "__main__":
    cli_main()
