"""How much memory a GraFusion training step needs: an estimate per example, by counting what
autograd keeps for the backward pass, plus parameters, gradients and optimizer state.

Activations of one post-norm transformer layer over ``T`` tokens (``a`` bytes per activation,
``m`` per dropout-mask element, ``H`` heads), as :class:`~fairseq_grafusion.modules.TransformerLayer`
keeps them: ``8Td`` activations (the layer input, Q, K, V, the attention output, the two residual
sums, the first LayerNorm's output), ``2Tf`` (the FFN's hidden state before and after GELU), two
dropout masks ``2Td`` and LayerNorm statistics ``4T`` floats; the attention adds ``2HT^2``
activations and an ``HT^2`` dropout mask on the *math* path (softmax output, dropped weights;
what CPUs run) but only ``HT`` log-sum-exp floats on a fused kernel (CUDA's memory-efficient or
flash attention).

The SA-Graph (eq. 6-11) of one layer adds, with ``N = T + 1`` node slots and ``E_a``, ``E_d``
undirected alignment and dependency edges: ``8Nd`` word states (pooled ``h``, the mean of aligned
neighbours, the gate, ``1 - g``, ``V2 h``, ``W2 hbar``, ``f_d``, ``f``), ``2E_a d`` gathered
neighbour states, ``2(2E_d + N) d`` GAT messages (self-loops included), the token-level ``p``
(``Td``) and ``G`` itself (``T^2``, twice on a fused kernel, which keeps the masked bias), plus
index arrays and per-edge scalars.

With ``--checkpoint-activations`` every layer keeps only its input (``Td``) and one layer's
activations live again while it is recomputed in the backward pass.

The formulas follow the code, tensor by tensor; ``tests/model/test_memory.py`` checks them against the
bytes autograd saves on a CPU, and ``tests/benchmarks/bench_memory.py`` against the peak memory
of real training steps on a GPU.
"""
from dataclasses import dataclass

ARCH_SIZES = {  # d, FFN, heads, SA layers (as the architecture functions set them)
    "grafusion_tiny": (64, 128, 4, 2),
    "grafusion_base": (768, 3072, 12, 10),
    "grafusion_large": (1024, 4096, 16, 22),
}
TOKENS_PER_WORD = 1.3  # SentencePiece pieces per word, a typical rate for XLM-R's vocabulary
OPTIMIZER_BYTES_PER_PARAM = {
    # fairseq --fp16 (FP16Optimizer): fp16 weights + fp16 grads + fp32 master weights and grads
    # + Adam's two fp32 moments
    "fp16": 2 + 2 + 4 + 4 + 8,
    "bf16": 2 + 2 + 4 + 4 + 8,
    # --memory-efficient-fp16: no fp32 copies, Adam's moments in fp32
    "memory-efficient-fp16": 2 + 2 + 8,
    "fp32": 4 + 4 + 8,
}


@dataclass
class Precision:
    """Bytes per activation element and per dropout-mask element, and the attention kernel."""

    activation: int = 2
    mask: int = 1
    attention: str = "fused"  # "fused" (CUDA memory-efficient / flash) or "math"

    @classmethod
    def of(cls, device, dtype_bytes):
        """CUDA keeps boolean dropout masks and runs fused attention; CPUs keep masks in the
        activation dtype and run the math path."""
        if device == "cuda":
            return cls(dtype_bytes, 1, "fused")
        return cls(dtype_bytes, dtype_bytes, "math")


def layer_bytes(tokens, dim, ffn, heads, prec):
    """Activations one transformer layer keeps for the backward pass, per example."""
    a, m, T = prec.activation, prec.mask, tokens
    out = a * (8 * T * dim + 2 * T * ffn) + m * 2 * T * dim + 4 * 4 * T
    if prec.attention == "math":
        out += (2 * a + m) * heads * T * T
    else:
        out += 4 * heads * T
    return out


def graph_bytes(tokens, dim, align_edges, dep_edges, prec):
    """Extra activations of one layer's SA-Graph (both edge types), per example."""
    a, T = prec.activation, tokens
    nodes = T + 1
    align_dir = 2 * align_edges
    dep_dir = 2 * dep_edges + nodes  # the GAT's self-loops
    out = a * (8 * nodes * dim + align_dir * dim + 2 * dep_dir * dim + T * dim + T * T)
    if prec.attention != "math":
        out += a * T * T  # the fused kernel keeps the masked bias
    out += 8 * (T + 2 * align_dir + 2 * dep_dir)  # int64 index arrays
    out += a * (2 * nodes + 4 * dep_dir) + 2 * T  # counts, per-edge scalars, boolean pads
    return out


def stream_bytes(length, dim, prec):
    """Embedding (LayerNorm input, dropout mask, statistics) and span head input of one stream."""
    return (2 * prec.activation + prec.mask) * length * dim + 8 * length + 4 * 2 * length


def edges_for(length):
    """Typical edge counts of one example at ``length`` tokens per stream: one alignment link per
    source word, a dependency tree per language plus 10% same-word edges, special-token links."""
    words = int(length / TOKENS_PER_WORD)
    return words + 4, int(2 * (words - 1) * 1.1)


def activation_bytes(length, arch="grafusion_base", graph=True, fusion=True, prec=None,
                     checkpoint=False, align_edges=None, dep_edges=None, sizes=None):
    """Bytes of activations a training step keeps per example (``length`` tokens per stream).

    ``sizes`` = (d, FFN, heads, SA layers) overrides ``arch``; ``graph`` False is ``--graph none``,
    ``fusion`` False ``--no-fusion``.
    """
    prec = prec or Precision()
    dim, ffn, heads, n_sa = sizes or ARCH_SIZES[arch]
    streams = 2 if fusion else 1
    T = streams * length
    if align_edges is None or dep_edges is None:
        align_edges, dep_edges = edges_for(length)
    bottom = layer_bytes(length, dim, ffn, heads, prec)
    sa = layer_bytes(T, dim, ffn, heads, prec)
    if graph and fusion:
        sa += graph_bytes(T, dim, align_edges, dep_edges, prec)
    fixed = streams * stream_bytes(length, dim, prec)
    if not checkpoint:
        return fixed + 2 * streams * bottom + n_sa * sa
    inputs = prec.activation * dim * (streams * length + n_sa * T + T)  # bottom, SA, top inputs
    return fixed + inputs + max(sa, bottom)


def state_bytes(params, optimizer="fp16"):
    """Parameters, gradients and Adam state."""
    return params * OPTIMIZER_BYTES_PER_PARAM[optimizer]


def max_batch(gpu_bytes, params, length, optimizer="fp16", reserve=0.1, **kwargs):
    """The largest batch (examples per GPU) whose estimate fits ``gpu_bytes`` with ``reserve``
    of it kept free for the allocator, the CUDA context and transient buffers."""
    prec = Precision(2 if optimizer != "fp32" else 4, 1, "fused")
    per_example = activation_bytes(length, prec=prec, **kwargs)
    free = gpu_bytes * (1 - reserve) - state_bytes(params, optimizer)
    return max(int(free // per_example), 0)
