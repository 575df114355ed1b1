"""Output heads of SA-Graph pre-training (paper section 3.4), registered on a
:class:`~fairseq_grafusion.models.grafusion.GraFusionModel` by the ``sa_graph_pretrain`` task
(:meth:`GraFusionModel.register_pretraining_heads`) and dropped again when the pre-trained weights
initialise fine-tuning.

* ``lm`` -- the TLM head, RoBERTa's ``RobertaLMHead``: ``dense -> gelu -> LayerNorm -> E^T + b``
  with the output projection tied to the input embeddings ``E``.  Its parameter names are
  RoBERTa's (``dense``, ``layer_norm``, ``bias``), so an XLM-R checkpoint's ``lm_head``
  initialises it.
* ``sa`` -- the vocabulary classifier of the graph-node recovery loss ``L_SA``.  The paper feeds
  the aggregate of a masked word's neighbours to "a linear classifier over the whole vocabulary";
  a word of XLM-R is several pieces, so the classifier input for piece ``k`` of the word is the
  aggregate plus a learnt embedding of ``k`` (as SpanBERT's span-boundary objective does), then
  the same transform as the LM head and the tied vocabulary projection with its own bias.  Tying
  keeps the head small: an untied ``d x |V|`` classifier would add 192M (base) / 256M (large)
  parameters that fine-tuning throws away.

The heads compute both losses' logits from the model's final states (:meth:`PretrainingHeads.forward`,
called by :meth:`GraFusionModel.pretraining_logits`), the ``L_SA`` neighbour aggregation
(:func:`sa_aggregate`) included: the criterion only scores.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq import utils
from fairseq.modules import LayerNorm

from ..modules import word_graph


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


class TiedVocabularyHead(nn.Module):
    """``E^T LayerNorm(act(dense(x))) + bias``; ``E`` (the embedding matrix) is passed to forward."""

    def __init__(self, dim, vocab_size, activation_fn="gelu"):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.activation_fn = utils.get_activation_fn(activation_fn)
        self.layer_norm = LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x, embed_weight):
        x = self.layer_norm(self.activation_fn(self.dense(x)))
        return F.linear(x, embed_weight) + self.bias


class SARecoveryHead(TiedVocabularyHead):
    """Vocabulary logits of piece ``k`` of a masked word from its neighbours' aggregate."""

    def __init__(self, dim, vocab_size, activation_fn="gelu", max_pieces=16):
        super().__init__(dim, vocab_size, activation_fn)
        self.max_pieces = max_pieces
        self.piece_embed = nn.Embedding(max_pieces, dim)

    def forward(self, aggregate, piece_index, embed_weight):
        piece = self.piece_embed(piece_index.clamp(max=self.max_pieces - 1))
        return super().forward(aggregate + piece, embed_weight)


class PretrainingHeads(nn.Module):
    """``lm`` (TLM) and ``sa`` (L_SA) heads; both tie their output to the input embeddings."""

    def __init__(self, dim, vocab_size, activation_fn="gelu"):
        super().__init__()
        self.lm = TiedVocabularyHead(dim, vocab_size, activation_fn)
        self.sa = SARecoveryHead(dim, vocab_size, activation_fn)

    def forward(self, x, word_ids, align_edges, dep_edges, masked_tokens, embed_weight):
        """Logits of both losses for the masked pieces.

        ``x`` (B, T, d): final states over ``[S; T]``; ``word_ids`` (B, T); edges (B, E, 2);
        ``masked_tokens`` (B, T) bool; ``embed_weight`` (V, d) the tied output embeddings.
        Returns ``tlm`` (M, V) for the M masked pieces (row-major order), ``sa`` (M', V) for the
        M' masked pieces whose word has a visible neighbour, ``sa_tokens`` (B, T) those pieces,
        and the numbers of ``masked_words`` and ``lonely_words`` (masked words without one).
        """
        aggregate, has_neighbour, masked_words, lonely_words = sa_aggregate(
            x, word_ids, align_edges, dep_edges, masked_tokens)
        sa_tokens = masked_tokens & has_neighbour
        pieces = piece_positions(word_ids)
        return {"tlm": self.lm(x[masked_tokens], embed_weight),
                "sa": self.sa(aggregate[sa_tokens], pieces[sa_tokens], embed_weight),
                "sa_tokens": sa_tokens, "masked_words": masked_words, "lonely_words": lonely_words}
