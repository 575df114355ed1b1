"""XLM-R's (post-norm) transformer layer, with an optional additive attention bias (eq. 4).

Parameter names are those of fairseq's ``TransformerEncoderLayer`` (``self_attn.{q,k,v,out}_proj``,
``self_attn_layer_norm``, ``fc1``, ``fc2``, ``final_layer_norm``) so XLM-R / RoBERTa checkpoints map
onto it one to one.  It exists because fairseq's layer turns every ``attn_mask`` into a boolean mask
(a float bias would be lost); this one adds the bias to the logits of every head through
``F.scaled_dot_product_attention``, which fuses the softmax and broadcasts the bias over heads
without materialising a ``(B*H, T, T)`` copy.  Tensors are batch-first ``(B, T, d)``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq import utils
from fairseq.modules import LayerNorm


class SelfAttention(nn.Module):
    """Multi-head self-attention ``softmax(QK^T / sqrt(d_k) + bias) V`` (bias shared by heads)."""

    def __init__(self, dim, heads, dropout):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, key_padding_mask, bias=None, need_weights=False, bias_is_scratch=False):
        """``bias_is_scratch``: the caller will not read ``bias`` again, so when no gradient flows
        through it (inference) the padding is written into it in place instead of into a copy."""
        bsz, seq_len, dim = x.shape

        def split(t):
            return t.view(bsz, seq_len, self.heads, dim // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        pad = key_padding_mask[:, None, None, :]  # (B, 1, 1, T), True = padding
        if bias is None:
            mask = ~pad
        else:
            mask = bias.to(q.dtype).unsqueeze(1)  # (B, 1, T, T)
            if bias_is_scratch and not (torch.is_grad_enabled() and bias.requires_grad):
                mask = mask.masked_fill_(pad, float("-inf"))
            else:
                mask = mask.masked_fill(pad, float("-inf"))
        dropout = self.dropout if self.training else 0.0
        if need_weights:  # explicit path, for analysis and plots only
            logits = q @ k.transpose(-1, -2) * (q.size(-1) ** -0.5)
            logits = logits.masked_fill(~mask, float("-inf")) if bias is None else logits + mask
            weights = torch.softmax(logits.float(), dim=-1).to(q.dtype)
            out = F.dropout(weights, dropout, self.training) @ v
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(bsz, seq_len, dim)
        return self.out_proj(out), weights


class TransformerLayer(nn.Module):
    """One post-norm encoder layer as in XLM-R / RoBERTa; ``bias`` (B, T, T) is added to the
    attention logits of every head."""

    def __init__(self, dim, ffn_dim, heads, dropout=0.1, attention_dropout=0.1,
                 activation_dropout=0.0, activation_fn="gelu"):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads, attention_dropout)
        self.self_attn_layer_norm = LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = LayerNorm(dim)
        self.activation_fn = utils.get_activation_fn(activation_fn)
        self.dropout, self.activation_dropout = dropout, activation_dropout

    def forward(self, x, key_padding_mask, bias=None, need_weights=False, bias_is_scratch=False):
        attn, weights = self.self_attn(x, key_padding_mask, bias, need_weights, bias_is_scratch)
        x = self.self_attn_layer_norm(x + F.dropout(attn, self.dropout, self.training))
        hidden = F.dropout(self.activation_fn(self.fc1(x)), self.activation_dropout, self.training)
        x = self.final_layer_norm(x + F.dropout(self.fc2(hidden), self.dropout, self.training))
        return x, weights
