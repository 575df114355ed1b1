"""Heatmaps like the paper's Figure 5: the attention of the last fusion (SA-Transformer) layer
from target tokens to source tokens, and the SA-Graph bias ``G`` over the same cells
(``grafusion-plot-attention``)."""
from .errors import GraFusionError
from .files import atomic_path


def attention_maps(model, sample, head=None):
    """Target-to-source attention (lt, ls) of the last SA layer and G over the same cells."""
    import torch

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
