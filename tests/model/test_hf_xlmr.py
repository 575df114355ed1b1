"""HuggingFace-format XLM-R as a start (--pretrained-xlmr DIR with config.json + safetensors / bin):
output for output against transformers' own XLMRobertaModel / XLMRobertaForQuestionAnswering."""
import json
import os
import shutil

import pytest
import torch
import transformers
from fairseq.data import Dictionary
from test_xlmr_init import build

from conftest import run_fairseq, train_args
from fairseq_grafusion import hf_xlmr
from fairseq_grafusion.errors import GraFusionError

LAYERS = 4  # grafusion_tiny: 1 + 2 SA + 1; filter_tiny / xlmr_translate_train_tiny: 4
# the test's own oracle of transformers' names, fairseq name -> HF name, per layer
HF_NAMES = {"self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
            "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
            "self_attn_layer_norm": "attention.output.LayerNorm", "fc1": "intermediate.dense",
            "fc2": "output.dense", "final_layer_norm": "output.LayerNorm"}


def vocabulary(data):
    """The data's dictionary as HF numbers it: the four specials, dict.txt, <mask>."""
    return Dictionary.load(os.path.join(data, "dict.txt")).symbols + ["<mask>"]


def hf_config(vocab_size, **extra):
    return transformers.XLMRobertaConfig(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=LAYERS, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        **extra)


def randomise(model):
    """Every tensor random, LayerNorms and the token-type table included (HF initialises those
    to constants and zeros, which would hide a swapped LayerNorm or a dropped token-type row)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.2 if "LayerNorm.weight" not in name else 0.3)
                    + (1.0 if "LayerNorm.weight" in name else 0.0))
    return model.eval()


def save(model, symbols, path, safe=True):
    model.save_pretrained(path, safe_serialization=safe)
    with open(os.path.join(path, hf_xlmr.TOKENIZER_JSON), "w", encoding="utf-8") as f:
        json.dump({"model": {"type": "Unigram", "unk_id": 3, "vocab": [[s, 0.0] for s in symbols]}}, f)
    return str(path)


@pytest.fixture(scope="module")
def hf_base(marker_data, tmp_path_factory):
    """A random tiny XLMRobertaModel over the marker data's vocabulary, saved both ways."""
    symbols = vocabulary(marker_data)
    model = randomise(transformers.XLMRobertaModel(hf_config(len(symbols)), add_pooling_layer=False))
    tmp = tmp_path_factory.mktemp("hf")
    return model, save(model, symbols, tmp / "safetensors"), save(model, symbols, tmp / "bin", safe=False)


def batch(vocab, lengths=(11, 7, 3), left=False):
    """Padded token ids, <s> ... </s> then <pad> (``left``: the padding first)."""
    g = torch.Generator().manual_seed(1)
    tokens = torch.ones(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        row = torch.randint(4, vocab - 1, (n,), generator=g)
        row[0], row[-1] = 0, 2
        if left:
            tokens[i, max(lengths) - n:] = row
        else:
            tokens[i, :n] = row
    return tokens


def final_states(model, tokens):
    model.eval()
    with torch.no_grad():
        feats = model.extract_features(tgt_tokens=tokens)
    return feats["tgt"], ~feats["tgt_pad"]


def hf_states(hf, tokens):
    with torch.no_grad():
        return hf(input_ids=tokens, attention_mask=tokens.ne(1)).last_hidden_state


@pytest.mark.parametrize("fmt", [1, 2], ids=["safetensors", "bin"])
@pytest.mark.parametrize("arch", [["--no-fusion"], ["--arch", "xlmr_translate_train_tiny"]],
                         ids=["no-fusion", "xlmr-tt"])
def test_final_states_equal_huggingface(hf_base, marker_data, fmt, arch):
    hf, directory = hf_base[0], hf_base[fmt]
    model = build(marker_data, "--pretrained-xlmr", directory, "--dropout", "0", "--attention-dropout", "0", *arch)
    for left in (False, True):
        tokens = batch(hf.config.vocab_size, left=left)
        ours, real = final_states(model, tokens)
        assert real.sum() == 21
        torch.testing.assert_close(ours[real], hf_states(hf, tokens)[real], rtol=0, atol=1e-5)


def mutated(directory, tmp, how):
    """A copy of an HF directory whose weights file has its layers swapped or one skipped."""
    from safetensors.torch import load_file, save_file

    out = tmp / f"mutated-{how}"
    shutil.copytree(directory, out)
    state = load_file(str(out / hf_xlmr.SAFETENSORS))
    layer = {i: {k: v for k, v in state.items() if k.startswith(f"encoder.layer.{i}.")} for i in range(LAYERS)}
    src = {"swap": {0: 1, 1: 0}, "skip": {2: 1}}[how]  # "skip": layer 1 twice, layer 2 never
    for i, j in src.items():
        for k in layer[i]:
            state[k] = layer[j][k.replace(f"encoder.layer.{i}.", f"encoder.layer.{j}.", 1)].clone()
    save_file(state, str(out / hf_xlmr.SAFETENSORS), metadata={"format": "pt"})
    return str(out)


@pytest.mark.parametrize("how", ["swap", "skip"])
def test_the_comparison_catches_a_swapped_or_skipped_layer(hf_base, marker_data, tmp_path, how):
    hf = hf_base[0]
    model = build(marker_data, "--pretrained-xlmr", mutated(hf_base[1], tmp_path, how), "--no-fusion",
                  "--dropout", "0", "--attention-dropout", "0")
    tokens = batch(hf.config.vocab_size)
    ours, real = final_states(model, tokens)
    assert (ours[real] - hf_states(hf, tokens)[real]).abs().max() > 1e-2


def hf_source(hf_state, i, ours_param):
    module, kind = ours_param.rsplit(".", 1)
    return hf_state[f"encoder.layer.{i}.{HF_NAMES[module]}.{kind}"]


@pytest.mark.parametrize("arch,modules", [
    ("grafusion_tiny", {0: ["tgt_bottom", "src_bottom"], 1: ["sa_layers.0"], 2: ["sa_layers.1"],
                        3: ["tgt_top", "src_top"]}),
    ("filter_tiny", {0: ["local.0"], 1: ["fusion_layers.0"], 2: ["fusion_layers.1"], 3: ["domain.0"]})])
def test_every_initialised_tensor_is_its_hf_source(hf_base, marker_data, arch, modules):
    hf_state = hf_base[0].state_dict()
    ours = build(marker_data, "--pretrained-xlmr", hf_base[1], "--arch", arch).state_dict()
    emb = {"embed_tokens.weight": hf_state["embeddings.word_embeddings.weight"],
           "embed_positions.weight": hf_state["embeddings.position_embeddings.weight"]
           + hf_state["embeddings.token_type_embeddings.weight"][0],
           "layernorm_embedding.weight": hf_state["embeddings.LayerNorm.weight"],
           "layernorm_embedding.bias": hf_state["embeddings.LayerNorm.bias"]}
    assert hf_state["embeddings.token_type_embeddings.weight"].abs().min() > 0  # non-zero: it must be added
    for name, want in emb.items():
        torch.testing.assert_close(ours[name], want, rtol=0, atol=0)
    checked = 0
    for i, names in modules.items():
        for module in names:
            for p in (f"{m}.{kind}" for m in HF_NAMES for kind in ("weight", "bias")):
                torch.testing.assert_close(ours[f"{module}.{p}"], hf_source(hf_state, i, p), rtol=0, atol=0)
                checked += 1
    assert checked == 16 * sum(len(n) for n in modules.values())


def test_squad_fine_tuned_heads_give_huggingface_logits(hf_base, marker_data, tmp_path):
    symbols = vocabulary(marker_data)
    hf = randomise(transformers.XLMRobertaForQuestionAnswering(hf_config(len(symbols))))
    directory = save(hf, symbols, tmp_path / "qa")
    model = build(marker_data, "--pretrained-xlmr", directory, "--no-fusion", "--init-span-heads-from-pretrained",
                  "--dropout", "0", "--attention-dropout", "0").eval()
    tokens = batch(len(symbols))
    with torch.no_grad():
        ours = model(tgt_tokens=tokens)
        theirs = hf(input_ids=tokens, attention_mask=tokens.ne(1))
    real = tokens.ne(1)
    for key, hf_key in (("tgt_start", "start_logits"), ("tgt_end", "end_logits")):
        torch.testing.assert_close(ours[key][real], getattr(theirs, hf_key)[real], rtol=0, atol=1e-5)
    # both streams of a fusion model take the head; without the option the heads start fresh
    fused = build(marker_data, "--pretrained-xlmr", directory, "--init-span-heads-from-pretrained").state_dict()
    for head in ("tgt_span_head", "src_span_head"):
        torch.testing.assert_close(fused[f"{head}.weight"], hf.qa_outputs.weight, rtol=0, atol=0)
    fresh = build(marker_data, "--pretrained-xlmr", directory).state_dict()
    assert not torch.equal(fresh["tgt_span_head.weight"], hf.qa_outputs.weight)
    with pytest.raises(GraFusionError, match="has no qa_outputs"):
        build(marker_data, "--pretrained-xlmr", hf_base[1], "--init-span-heads-from-pretrained")


class Pickle:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_safetensors_directory_never_unpickles(hf_base, marker_data, tmp_path):
    directory = tmp_path / "hf"
    shutil.copytree(hf_base[1], directory)
    marker = tmp_path / "pwned"
    torch.save({"x": Pickle(str(marker))}, directory / hf_xlmr.PYTORCH_BIN)
    build(marker_data, "--pretrained-xlmr", str(directory))  # safetensors preferred: the .bin is never opened
    assert not marker.exists()
    os.remove(directory / hf_xlmr.SAFETENSORS)  # now the .bin: weights_only refuses the pickle
    with pytest.raises(GraFusionError, match=r"pytorch_model\.bin: .*"):
        build(marker_data, "--pretrained-xlmr", str(directory))
    assert not marker.exists()


def test_bad_directories_are_one_line(hf_base, marker_data, tmp_path):
    def variant(name, edit_config=None, files=None):
        out = tmp_path / name
        shutil.copytree(hf_base[1], out)
        if edit_config:
            config = json.loads((out / "config.json").read_text())
            edit_config(config)
            (out / "config.json").write_text(json.dumps(config))
        for f, text in (files or {}).items():
            (out / f).write_text(text) if text is not None else os.remove(out / f)
        return str(out)

    cases = [
        (variant("empty", files={"config.json": None}), r"neither an XLM-R fairseq release .* nor a HuggingFace"),
        (variant("noweights", files={hf_xlmr.SAFETENSORS: None}), r"config.json but neither model.safetensors"),
        (variant("bert", lambda c: c.update(model_type="bert")), r"config.json: model_type is 'bert', not XLM-R"),
        (variant("xlm", lambda c: c.update(model_type="xlm")), r"config.json: model_type is 'xlm'"),
        (variant("width", lambda c: c.update(hidden_size=768)), r"config.json: hidden_size is 768, the model has 64"),
        (variant("ffn", lambda c: c.update(intermediate_size=3072)), r"config.json: intermediate_size is 3072"),
        (variant("layers", lambda c: c.update(num_hidden_layers=12)),
         r"config.json: num_hidden_layers is 12 but the weights have 4"),
        (variant("vocab", files={hf_xlmr.TOKENIZER_JSON: json.dumps(
            {"model": {"vocab": [[s, 0.0] for s in vocabulary(marker_data) + ["x1", "x2"]]}})}),
         r"dictionary mismatch: .* has \d+ symbols with <mask>, .*tokenizer.json has \d+"),
        (variant("symbol", files={hf_xlmr.TOKENIZER_JSON: json.dumps(
            {"model": {"vocab": [[s if i != 7 else "other", 0.0] for i, s in enumerate(vocabulary(marker_data))]}})}),
         r"dictionary mismatch: symbol 7 is .* but 'other' in .*tokenizer.json"),
        (variant("eps", lambda c: c.update(layer_norm_eps=1e-12)), r"config.json: layer_norm_eps is 1e-12"),
        (variant("json", files={"config.json": "{not json"}), r"config.json: cannot read the HuggingFace config"),
        (variant("damaged", files={hf_xlmr.SAFETENSORS: "garbage"}), r"model.safetensors: cannot read"),
    ]
    for directory, message in cases:
        with pytest.raises(GraFusionError, match=message) as e:
            build(marker_data, "--pretrained-xlmr", directory)
        assert "\n" not in str(e.value)


def test_fairseq_train_starts_from_a_huggingface_directory(hf_base, marker_data, tmp_path):
    proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / "ck"), "--pretrained-xlmr",
                                            hf_base[1], "--no-fusion", updates=2))
    out = proc.stdout + proc.stderr
    assert "model.safetensors (huggingface format)" in out
    assert os.path.isfile(tmp_path / "ck" / "checkpoint_last.pt")


def test_vocabulary_from_the_sentencepiece_model_is_xlmr_numbering(tmp_path):
    """Without tokenizer.json, XLM-R's tokenizer numbering: specials, SentencePiece ids 3.., <mask>;
    its dict.txt (grafusion-preprocess --dict DIR) loads back as the same dictionary."""
    import sentencepiece as spm

    from conftest import REPO

    model = os.path.join(REPO, "examples", "sample", "spm", "sentencepiece.bpe.model")
    shutil.copy(model, tmp_path / hf_xlmr.SPM_FILE)
    symbols, source = hf_xlmr.vocabulary(str(tmp_path))
    sp = spm.SentencePieceProcessor(model_file=model)
    assert source.endswith(hf_xlmr.SPM_FILE) and len(symbols) == sp.get_piece_size() + 2
    assert symbols[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and symbols[-1] == "<mask>"
    assert [symbols[i + 1] for i in range(3, sp.get_piece_size())] == \
        [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]
    (tmp_path / "dict.txt").write_text("".join(hf_xlmr.dict_lines(symbols)))
    assert Dictionary.load(str(tmp_path / "dict.txt")).symbols + ["<mask>"] == symbols


def test_preprocess_takes_the_vocabulary_of_a_huggingface_directory(tmp_path):
    """grafusion-preprocess binarize --spm DIR --dict DIR on an HF directory: the dict.txt it
    writes is the HF vocabulary, so the data's dictionary passes the symbol-by-symbol check."""
    from conftest import REPO, preprocess

    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    shutil.copy(os.path.join(REPO, "examples", "sample", "spm", "sentencepiece.bpe.model"), hf_dir / hf_xlmr.SPM_FILE)
    (hf_dir / "config.json").write_text(json.dumps({"model_type": "xlm-roberta"}))
    sample = os.path.join(REPO, "examples", "sample")
    preprocess("all", "--qa", "valid", os.path.join(sample, "qa", "valid.en.json"),
               os.path.join(sample, "qa", "valid.de.json"), "--src-lang", "en", "--tgt-lang", "de",
               "--spm", str(hf_dir), "--dict", str(hf_dir), "--out", str(tmp_path / "out"))
    symbols, _ = hf_xlmr.vocabulary(str(hf_dir))
    assert Dictionary.load(str(tmp_path / "out" / "qa-bin" / "dict.txt")).symbols + ["<mask>"] == symbols


def test_masked_lm_head_starts_the_tlm_head_of_pre_training(tmp_path_factory):
    """sa_graph_pretrain --pretrained-xlmr on an HF XLMRobertaForMaskedLM directory (safetensors
    leaves the tied decoder weight out): its lm_head becomes the TLM head, its encoder the model's."""
    from test_pretrain_loss import build as build_pretrain

    from fairseq_grafusion.synthetic import SyntheticXMRC

    data = str(tmp_path_factory.mktemp("parallel"))
    SyntheticXMRC().write(data, splits=(("train", 8), ("valid", 4)), with_span=False)
    symbols = vocabulary(data)
    hf = randomise(transformers.XLMRobertaForMaskedLM(hf_config(len(symbols))))
    directory = save(hf, symbols, tmp_path_factory.mktemp("mlm"))
    _, model, _ = build_pretrain(data, "sa_graph_pretrain", "--pretrained-xlmr", directory)
    ours, theirs = model.state_dict(), hf.state_dict()
    for name in ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias"):
        torch.testing.assert_close(ours[f"pretrain_heads.lm.{name}"], theirs[f"lm_head.{name}"], rtol=0, atol=0)
    fc1 = theirs["roberta.encoder.layer.1.intermediate.dense.weight"]
    torch.testing.assert_close(ours["sa_layers.0.fc1.weight"], fc1, rtol=0, atol=0)
