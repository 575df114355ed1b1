"""Criterion ``sa_graph_pretrain``: ``L = L_TLM + L_SA`` (paper section 3.4).

For a batch masked by :class:`~fairseq_grafusion.data.GraphMaskingDataset` (``target`` over
``[S; T]``: the original piece where masked, padding elsewhere), with ``x`` the final states of
both streams concatenated (``extract_features``' ``src`` and ``tgt``):

* ``L_TLM`` -- every masked piece is predicted from its own final state through the RoBERTa LM
  head (output tied to the input embeddings): ``-log P(piece | x_piece)``.
* ``L_SA`` -- every piece of a masked word ``i`` is predicted from the aggregate of ``i``'s
  SA-Graph neighbours (see :func:`sa_aggregate`) through the recovery head:
  ``-log P(piece | a_i, k)`` with ``k`` the piece's position inside its word.  A masked word
  without a visible neighbour contributes no ``L_SA`` term; such words are counted
  (``sa_no_nb``, % of masked words).

Both are sums over masked pieces; fairseq divides the gradient by ``sample_size`` = number of
masked pieces, so the objective is the paper's ``sum_i L_TLM(i) + L_SA(i)`` per masked piece
(``--sa-loss-weight`` scales ``L_SA``, 1 by default).  Logged, all summable across workers:
``loss`` (per masked piece), ``tlm_loss`` (per masked piece) and ``sa_loss`` (per piece that has
an ``L_SA`` term), in base 2 as fairseq's LM criterions; their accuracies; ``sa_no_nb``; and
``mono`` (% of batches masked mono-lingually).
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..errors import GraFusionError
from ..modules import word_graph
from .xmrc_span import log_loss


def piece_positions(word_ids):
    """Position of every token inside its word (0 = first piece): (B, T) -> (B, T)."""
    bsz, seq_len = word_ids.shape
    token_nodes, num_nodes = word_graph.node_index(word_ids)
    pos = torch.arange(seq_len, device=word_ids.device).expand(bsz, seq_len)
    first = torch.full((num_nodes,), seq_len, dtype=torch.long, device=word_ids.device)
    first = first.scatter_reduce(0, token_nodes.reshape(-1), pos.reshape(-1), reduce="amin")
    return pos - first[token_nodes]


def sa_aggregate(x, word_ids, align_edges, dep_edges, token_mask):
    """The aggregate ``a_i`` that ``L_SA`` recovers a masked word ``i`` from.

    ``a_i = mean{ w_j : j in N(i), j not masked }`` where ``N(i)`` are ``i``'s neighbours over
    both edge types (alignment and dependency / same-word, undirected, each neighbour once) and
    ``w_j`` is word ``j``'s final state, the mean of the final states of its pieces (so a
    neighbour counts once however many pieces it has).

    Masked neighbours are left out: their states stand on ``<mask>`` inputs and are the TLM's own
    predictions, and with them cross-lingual masking would hand ``L_SA`` the aligned (masked)
    word's state, the alignment flow that strategy exists to cut; the paper recovers a node "from
    the representations of its semantic and syntactic neighbours", i.e. the observed ones.

    ``x`` (B, T, d) are the final states over ``[S; T]``, ``word_ids`` (B, T), edges (B, E, 2),
    ``token_mask`` (B, T) the masked pieces.  Returns ``a`` broadcast to the tokens (B, T, d),
    whether the token's word has a visible neighbour (B, T), and per batch the number of masked
    words and of masked words without a visible neighbour.
    """
    seq_len = word_ids.size(1)
    token_nodes, num_nodes = word_graph.node_index(word_ids)
    h = word_graph.pool_words(x, token_nodes, num_nodes)
    flat_nodes = token_nodes.reshape(-1)
    masked_node = torch.zeros(num_nodes, dtype=torch.bool, device=x.device)
    masked_node[flat_nodes[token_mask.reshape(-1)]] = True
    pairs = word_graph.both_directions(torch.cat([word_graph.edge_index(align_edges, seq_len),
                                                  word_graph.edge_index(dep_edges, seq_len)]))
    receiver, sender = pairs[:, 0], pairs[:, 1]
    visible = (~masked_node[sender]).to(h.dtype)
    sums = torch.zeros_like(h).index_add_(0, receiver, h[sender] * visible.unsqueeze(-1))
    counts = h.new_zeros(num_nodes).index_add_(0, receiver, visible)
    aggregate = sums / counts.clamp(min=1).unsqueeze(-1)
    has_neighbour = counts > 0
    lonely = masked_node & ~has_neighbour
    return (aggregate[token_nodes], has_neighbour[token_nodes], int(masked_node.sum()),
            int(lonely.sum()))


@dataclass
class SAGraphPretrainCriterionConfig(FairseqDataclass):
    sa_loss_weight: float = field(default=1.0, metadata={
        "help": "weight of L_SA in L = L_TLM + w * L_SA (the paper: 1; 0: TLM only)"})


@register_criterion("sa_graph_pretrain", dataclass=SAGraphPretrainCriterionConfig)
class SAGraphPretrainCriterion(FairseqCriterion):
    def __init__(self, task, sa_loss_weight=1.0):
        super().__init__(task)
        self.sa_loss_weight = sa_loss_weight
        self.padding_idx = task.source_dictionary.pad()

    def forward(self, model, sample, reduce=True):
        heads = getattr(model, "pretrain_heads", None)
        if heads is None:
            raise GraFusionError("criterion sa_graph_pretrain needs --task sa_graph_pretrain "
                                 "(the model has no pre-training heads)")
        if "target" not in sample or sample["target"].dim() != 2:
            raise GraFusionError("criterion sa_graph_pretrain needs masked batches from "
                                 "--task sa_graph_pretrain")
        net_input = sample["net_input"]
        feats = model.extract_features(**net_input)
        x = torch.cat([feats["src"], feats["tgt"]], dim=1)
        target = sample["target"]
        masked = target.ne(self.padding_idx)
        embed = model.embed_tokens.weight

        tlm_target = target[masked]
        tlm_logits = heads.lm(x[masked], embed).float()
        tlm_loss = F.cross_entropy(tlm_logits, tlm_target, reduction="sum")

        aggregate, has_neighbour, masked_words, lonely_words = sa_aggregate(
            x, net_input["word_ids"], net_input["align_edges"], net_input["dep_edges"], masked)
        sa_sel = masked & has_neighbour
        pieces = piece_positions(net_input["word_ids"])
        sa_target = target[sa_sel]
        sa_logits = heads.sa(aggregate[sa_sel], pieces[sa_sel], embed).float()
        sa_loss = F.cross_entropy(sa_logits, sa_target, reduction="sum")

        loss = tlm_loss + self.sa_loss_weight * sa_loss
        n_masked = int(masked.sum())
        masking = sample.get("masking", {})
        logging_output = {
            "loss": loss.data,
            "tlm_loss": tlm_loss.data,
            "sa_loss": sa_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": n_masked,
            "tlm_n": n_masked,
            "sa_n": int(sa_sel.sum()),
            "tlm_correct": int((tlm_logits.argmax(-1) == tlm_target).sum()),
            "sa_correct": int((sa_logits.argmax(-1) == sa_target).sum()),
            "masked_words": masked_words,
            "lonely_words": lonely_words,
            "mono_batches": int(masking.get("mono", 0)),
            "batches": 1,
        }
        return loss, n_masked, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs):
        total = log_loss(logging_outputs)
        for name in ("tlm", "sa"):
            n = total(f"{name}_n")
            if n:
                metrics.log_scalar(f"{name}_loss", total(f"{name}_loss") / n / math.log(2), n,
                                   round=3)
                metrics.log_scalar(f"{name}_acc", 100.0 * total(f"{name}_correct") / n, n,
                                   round=1)
        words = total("masked_words")
        if words:
            metrics.log_scalar("sa_no_nb", 100.0 * total("lonely_words") / words, words, round=1)
        batches = total("batches")
        if batches:
            metrics.log_scalar("mono", 100.0 * total("mono_batches") / batches, batches, round=1)
        metrics.log_scalar("nsentences", total("nsentences"), priority=999, round=0)

    @staticmethod
    def logging_outputs_can_be_summed():
        return True
