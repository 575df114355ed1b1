"""Stanza's parser on the GPU when one is visible (``parse.stanza_device``): the models run there,
in batches, and give the arcs they give on the CPU."""
import pytest
import torch
from test_preprocess_stanza import stanza_dir  # noqa: F401  (fixture: a tiny Spanish Stanza, trained)

from fairseq_grafusion.preprocess import parse

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_stanza_parses_on_the_gpu_as_on_the_cpu(stanza_dir, monkeypatch):  # noqa: F811
    directory, text = stanza_dir
    sentences = [text[:-1].split() + ["."]] * 40 + [["El", "presidente", "del", "gobierno", "."], []]
    assert parse.stanza_device() == "cuda"
    torch.cuda.reset_peak_memory_stats()
    on_gpu = parse.stanza_arcs("es", directory, sentences, batch_words=64)  # several batches
    assert torch.cuda.max_memory_allocated() > 0  # the models ran on the GPU
    monkeypatch.setattr(parse, "stanza_device", lambda: "cpu")
    on_cpu = parse.stanza_arcs("es", directory, sentences, batch_words=64)
    assert len(on_gpu) == len(on_cpu) == len(sentences) and on_gpu[-1] == []
    same = sum(g == c for g, c in zip(on_gpu, on_cpu))
    assert same >= 0.95 * len(sentences), (same, len(sentences))  # float rounding may flip a tie
