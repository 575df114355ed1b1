"""The SA-Transformer layer (eq. 3-4): a transformer layer over ``[A_s; A_t]`` whose attention
logits get the SA-Graph bias ``G`` computed from the layer's own input (eq. 6-11)."""
from .transformer_layer import TransformerLayer


class SATransformerLayer(TransformerLayer):
    """``softmax(QK^T/sqrt(d_k) + G) V`` in every head; without a graph, a plain fusion layer."""

    def __init__(self, dim, ffn_dim, heads, graph=None, **kwargs):
        super().__init__(dim, ffn_dim, heads, **kwargs)
        self.graph = graph

    def forward(self, x, key_padding_mask, graph_input=None, need_weights=False):
        """Returns the new states and, with ``need_weights``, the attention weights and ``G`` (or
        None); without it ``G`` is not returned, so inference can pad it in place."""
        bias = None
        if self.graph is not None and graph_input is not None:
            bias = self.graph(x, **graph_input)
        x, weights = super().forward(x, key_padding_mask, bias, need_weights,
                                     bias_is_scratch=not need_weights)
        return x, weights, (bias if need_weights else None)
