"""A family of crafted checkpoints through every path that loads one: nothing runs, nothing is
built, each is refused in one line.

The files are what an attacker can write with ``torch.save`` of dicts, strings and Namespaces
(all of which ``weights_only=True`` loads): a model named one way for a guard and another for
fairseq's builder, old-format ``args`` beside a harmless ``cfg``, OmegaConf interpolations, a
criterion fairseq-validate builds, fields a builder ``eval()``s, pickled objects.  Each payload
creates a marker file if it ever runs.  The command lines run through ``forked_commands.py``
(each in a fresh child of one interpreter that imported everything once).

:func:`test_resolve_picks_what_fairseq_builds` checks the other side: on fresh random
configurations, the names :func:`~fairseq_grafusion.checkpoint_policy.resolve` gives are the
model and task classes fairseq's own ``build_model`` and ``setup_task`` reach.
"""
import argparse
import os
import random
import shutil
import zipfile

import pytest
import torch

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import REPO, USER_DIR, run_fairseq, run_forked, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.errors import GraFusionError

SAMPLE = os.path.join(REPO, "examples", "sample")
SECRET = "s3cr3t-from-the-environment"


def plain(value):
    """A checkpoint's configuration as plain dicts (Namespaces as dicts)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, argparse.Namespace):
        return plain(vars(value))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def payload(mark, then):
    """A Python expression that creates ``mark`` and evaluates to ``then``."""
    return f"__import__('pathlib').Path({str(mark)!r}).touch() or {then}"


def fconv(mark):
    """fairseq's ``fconv`` model, whose builder ``eval()``s its layer specifications."""
    layers = payload(mark, "[(64, 3)] * 2")
    return {"encoder_layers": layers, "decoder_layers": layers, "encoder_embed_dim": 64,
            "decoder_embed_dim": 64, "decoder_out_embed_dim": 64, "decoder_attention": "True",
            "dropout": 0.1, "max_source_positions": 64, "max_target_positions": 64,
            "share_input_output_embed": False}


def with_cfg(state, **sections):
    cfg = plain(state["cfg"])
    cfg.update(sections)
    return dict(state, cfg=cfg)


# ---- crafted from one of our xmrc_span checkpoints: (name, craft(state, mark) -> state) ----
def _ours(state):
    return plain(state["cfg"])["model"], plain(state["cfg"])["task"]


OURS_CRAFTS = {
    # the example: our architecture in arch, fconv in _name (what fairseq builds)
    "name fconv, arch ours": lambda s, m: with_cfg(s, model={**fconv(m), "_name": "fconv",
                                                             "arch": "grafusion_tiny"}),
    "name and arch fconv": lambda s, m: with_cfg(s, model={**fconv(m), "_name": "fconv", "arch": "fconv"}),
    "name ours, arch fconv": lambda s, m: with_cfg(s, model={**_ours(s)[0], "arch": "fconv"}),
    "Namespace cfg.model": lambda s, m: with_cfg(s, model=argparse.Namespace(
        **fconv(m), _name="fconv", arch="grafusion_tiny")),
    "Namespace of our own fields": lambda s, m: with_cfg(s, model=argparse.Namespace(**_ours(s)[0])),
    # fairseq reads args before cfg: a harmless cfg beside them
    "old-style args": lambda s, m: dict(with_cfg(s), args=argparse.Namespace(
        **fconv(m), arch="fconv", task="xmrc_span", criterion="xmrc_span",
        data=_ours(s)[1]["data"])),
    "args of our model": lambda s, m: dict(with_cfg(s), args=argparse.Namespace(
        **_ours(s)[0], arch="grafusion_tiny", task="xmrc_span", data=_ours(s)[1]["data"])),
    # cfg.task.task (argparse tasks) wins over _name in setup_task
    "task field disagrees": lambda s, m: with_cfg(s, task={**_ours(s)[1], "task": "translation"}),
    "interpolation in cfg.task": lambda s, m: with_cfg(
        s, task={**_ours(s)[1], "data": "${oc.env:GRAFUSION_TEST_SECRET}"}),
    "interpolation in cfg.model": lambda s, m: with_cfg(
        s, model={**_ours(s)[0], "graph": "${oc.env:GRAFUSION_TEST_SECRET}"}),
    "unknown model field": lambda s, m: with_cfg(
        s, model={**_ours(s)[0], "encoder_layers": payload(m, "[(64, 3)]")}),
    "field of another type": lambda s, m: with_cfg(s, model={**_ours(s)[0], "sa_layers": "2"}),
    # fairseq-validate builds cfg.criterion; ctc eval()s its wer_args
    "criterion ctc": lambda s, m: with_cfg(s, criterion={
        "_name": "ctc", "wer_args": payload(m, "('', '', 0.0, 0.0)"), "zero_infinity": False,
        "sentence_avg": True, "post_process": "letter"}),
    "model is a list": lambda s, m: with_cfg(s, model=[_ours(s)[0]]),
}


class Payload:
    def __init__(self, mark):
        self.mark = str(mark)

    def __reduce__(self):
        return (os.system, (f"touch {self.mark}",))


def write_crafts(state, crafts, directory, file_name):
    """One directory per craft, the crafted checkpoint saved as ``file_name``; returns
    ``{craft: (directory, marker)}``.  Each file passes torch's safe loader by itself."""
    made = {}
    for k, (name, craft) in enumerate(crafts.items()):
        d = directory / f"craft{k}"
        d.mkdir()
        mark = directory / f"PWNED{k}"
        torch.save(craft(state, mark), d / file_name)
        torch.load(d / file_name, weights_only=False)  # a plain torch.save of plain data
        made[name] = (d, mark)
    return made


def write_unreadable(directory, file_name):
    """Files that never get as far as a configuration: pickled code, a zip that is no checkpoint."""
    made = {}
    d, mark = directory / "pickled", directory / "PWNED-pickle"
    d.mkdir()
    torch.save({"cfg": {}, "model": {}, "x": Payload(mark)}, d / file_name)
    made["pickled object"] = (d, mark)
    d = directory / "zip"
    d.mkdir()
    with zipfile.ZipFile(d / file_name, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\nq\x00.")
    made["zip of another kind"] = (d, directory / "PWNED-zip")
    return made


@pytest.fixture(scope="module")
def ours(sample_run, tmp_path_factory):
    """A real xmrc_span checkpoint (2 updates on the preprocessed sample) in a model directory
    the hub reads, and its data directory."""
    data = str(sample_run[0] / "qa-bin")
    tmp = tmp_path_factory.mktemp("ours")
    run_fairseq("train", *train_args(data, str(tmp / "ck"), "--disable-validation", updates=2))
    model = tmp / "model"
    model.mkdir()
    shutil.copy(tmp / "ck" / "checkpoint_last.pt", model / "checkpoint_best.pt")
    for name, source in (("dict.txt", os.path.join(data, "dict.txt")),
                         ("sentencepiece.bpe.model", os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"))):
        shutil.copy(source, model / name)
    return data, model


def assert_refused(label, code, output, mark):
    assert not os.path.exists(mark), f"{label}: the checkpoint's code ran"
    assert SECRET not in output, f"{label}: the environment leaked into the output"
    assert code == 1, f"{label}: exit code {code}\n{output[-3000:]}"
    assert "Traceback" not in output, f"{label}:\n{output[-3000:]}"
    last = output.strip().splitlines()[-1]
    assert ": error: " in last, f"{label}: {last}"
    return last


def ours_paths(data):
    """Every path that loads one of our checkpoints: ``{path: argv(run directory, craft
    directory)}``, the crafted file being ``craft/checkpoint_best.pt`` (also ``craft/model.pt``,
    with ``dict.txt`` and ``sentencepiece.bpe.model`` beside it)."""
    def train(extra, arch="grafusion_tiny"):
        return lambda run, craft: ["fairseq-train", train_args(
            data, str(run / "save"), "--disable-validation", *extra(craft), updates=1, arch=arch)]
    ck = lambda craft: str(craft / "checkpoint_best.pt")  # noqa: E731
    return {
        "grafusion-predict --path": lambda run, craft: ["grafusion-predict", [
            "--path", ck(craft), "--data", data, "--split", "valid", "--output", run / "p.json"]],
        "grafusion-plot-attention --path": lambda run, craft: ["grafusion-plot-attention", [
            "--path", ck(craft), "--data", data, "--split", "valid", "--output", run / "a.png"]],
        "hub from_pretrained": lambda run, craft: ["hub", [craft, "checkpoint_best.pt",
                                                           "src_lang=en", "tgt_lang=ro"]],
        "fairseq-validate --path": lambda run, craft: ["fairseq-validate", [
            data, "--user-dir", USER_DIR, "--task", "xmrc_span", "--path", ck(craft),
            "--valid-subset", "valid", "--batch-size", "4", "--cpu"]],
        "--self-teaching-teacher": train(lambda c: ["--criterion", "xmrc_span_self_teaching",
                                                    "--self-teaching-teacher", ck(c)], arch="filter_tiny"),
        "--restore-file": train(lambda c: ["--restore-file", ck(c)]),
        "--finetune-from-model": train(lambda c: ["--finetune-from-model", ck(c)]),
        "--pretrained-sagraph": train(lambda c: ["--pretrained-sagraph", ck(c)]),
        "--pretrained-xlmr": train(lambda c: ["--pretrained-xlmr", str(c)]),
    }


def test_crafted_checkpoints_run_nothing_on_any_path_of_ours(ours, tmp_path):
    data, model = ours
    real = load_state(str(model / "checkpoint_best.pt"))
    crafts = write_crafts(real, OURS_CRAFTS, tmp_path, "checkpoint_best.pt")
    crafts.update(write_unreadable(tmp_path, "checkpoint_best.pt"))
    for craft, _ in crafts.values():  # what the hub and --pretrained-xlmr read beside the file
        for name in ("dict.txt", "sentencepiece.bpe.model"):
            shutil.copy(model / name, craft / name)
        os.link(craft / "checkpoint_best.pt", craft / "model.pt")
    jobs, labels = [], []
    for name, (craft, mark) in crafts.items():
        for k, (path, argv) in enumerate(ours_paths(data).items()):
            run = craft / f"path{k}"
            run.mkdir()
            jobs.append((*argv(run, craft), run / "log"))
            labels.append((f"{name} / {path}", mark))
    results = run_forked(jobs, tmp_path, GRAFUSION_TEST_SECRET=SECRET)
    lines = {label: assert_refused(label, code, output, mark)
             for (label, mark), (code, output) in zip(labels, results)}
    print("\n".join(f"{k}: {v}" for k, v in lines.items()))
    # the reasons, on a few of them
    assert "'fconv'" in lines["name fconv, arch ours / grafusion-predict --path"]
    assert "is not a fairseq-grafusion model" in lines["name and arch fconv / fairseq-validate --path"]
    assert "names 'grafusion_tiny' (which fairseq would build) but arch says 'fconv'" in \
        lines["name ours, arch fconv / hub from_pretrained"]
    assert "old-format 'args'" in lines["args of our model / --self-teaching-teacher"]
    assert "interpolation" in lines["interpolation in cfg.task / fairseq-validate --path"]
    assert "'encoder_layers', which grafusion_tiny does not take" in \
        lines["unknown model field / --finetune-from-model"]
    assert "cfg.criterion names 'ctc'" in lines["criterion ctc / fairseq-validate --path"]
    assert "refused: the file holds pickled objects" in lines["pickled object / --restore-file"]


def mt_crafts(real):
    """Crafted from a real fairseq translation checkpoint (ro -> en)."""
    cfg = plain(real["cfg"])
    model = cfg["model"]
    return {
        "MT: name fconv, arch transformer": lambda s, m: with_cfg(s, model=argparse.Namespace(
            **{**model, **fconv(m), "_name": "fconv", "arch": "transformer"})),
        "MT: dict cfg.model of fconv": lambda s, m: with_cfg(s, model={**fconv(m), "_name": "fconv",
                                                                    "arch": "fconv"}),
        "MT: old-style args of fconv": lambda s, m: dict(with_cfg(s), args=argparse.Namespace(
            **{**model, **fconv(m), "arch": "fconv", "task": "translation", "source_lang": "ro",
               "target_lang": "en"})),
        "MT: adaptive_softmax_cutoff": lambda s, m: with_cfg(s, model=argparse.Namespace(
            **{**model, "adaptive_softmax_cutoff": payload(m, "[10]")})),
        "MT: decoder_xformers_att_config": lambda s, m: with_cfg(s, model=argparse.Namespace(
            **{**model, "decoder_xformers_att_config": payload(m, "None")})),
        "MT: task _name disagrees": lambda s, m: with_cfg(s, task={**cfg["task"], "_name": "translation",
                                                               "task": "translation_lev"}),
        "MT: interpolation": lambda s, m: with_cfg(s, task={**cfg["task"],
                                                         "data": "${oc.env:GRAFUSION_TEST_SECRET}"}),
        "MT: an xmrc_span checkpoint's task": lambda s, m: with_cfg(s, task={"_name": "xmrc_span"}),
    }


def test_crafted_translation_models_run_nothing(ours, moses_bpe_mt, tmp_path):
    """``--mt-test-model`` of grafusion-preprocess and of grafusion-predict --qa."""
    data, model = ours
    real = load_state(os.path.join(moses_bpe_mt.model, "model.pt"))
    crafts = write_crafts(real, mt_crafts(real), tmp_path, "model.pt")
    crafts.update(write_unreadable(tmp_path, "model.pt"))
    jobs, labels = [], []
    valid_ro = os.path.join(SAMPLE, "qa", "valid.ro.json")
    for craft, (d, mark) in crafts.items():
        for lang in ("ro", "en"):
            shutil.copy(os.path.join(moses_bpe_mt.model, f"dict.{lang}.txt"), d)
        jobs.append(("grafusion-preprocess", [
            "pairs", "--out", d / "out", "--src-lang", "en", "--tgt-lang", "ro", "--qa", "valid", "-",
            valid_ro, "--mt-test-model", d], d / "preprocess.log"))
        labels.append((f"{craft} / grafusion-preprocess --mt-test-model", mark))
        jobs.append(("grafusion-predict", [
            "--path", model / "checkpoint_best.pt", "--qa", "-", valid_ro, "--src-lang", "en",
            "--tgt-lang", "ro", "--spm", model / "sentencepiece.bpe.model", "--dict",
            model / "dict.txt", "--mt-test-model", d, "--output", d / "p.json"], d / "predict.log"))
        labels.append((f"{craft} / grafusion-predict --qa --mt-test-model", mark))
    results = run_forked(jobs, tmp_path, GRAFUSION_TEST_SECRET=SECRET)
    lines = {label: assert_refused(label, code, output, mark)
             for (label, mark), (code, output) in zip(labels, results)}
    print("\n".join(f"{k}: {v}" for k, v in lines.items()))
    assert "not a Python literal, and fairseq eval()s it" in \
        lines["MT: adaptive_softmax_cutoff / grafusion-preprocess --mt-test-model"]
    assert "is not a fairseq transformer translation model" in \
        lines["MT: old-style args of fconv / grafusion-predict --qa --mt-test-model"]
    # the real model itself still loads and translates (test_preprocess_mt covers the rest)
    from fairseq_grafusion.preprocess import translate
    from fairseq_grafusion.preprocess.mt_config import MTDirection

    translator = translate.load_hub_translator(MTDirection(moses_bpe_mt.model, beam=1), "ro", "en")
    assert translator.translate(["Buna ziua ."])[0].strip()


def test_every_string_the_translation_path_evaluates_is_checked():
    """The eval() calls in the code that builds and runs a fairseq transformer translation model
    (its model, modules, task, generator, hub and text codecs) read only fields of
    ``EVALUATED_FIELDS``: a fairseq that adds one fails here, not in a user's process."""
    import glob
    import re

    import fairseq

    from fairseq_grafusion.checkpoint_policy import EVALUATED_FIELDS

    root = os.path.dirname(fairseq.__file__)
    files = sorted(glob.glob(os.path.join(root, "models", "transformer", "*.py"))
                   + glob.glob(os.path.join(root, "modules", "*.py"))
                   + glob.glob(os.path.join(root, "data", "encoders", "*.py"))
                   + [os.path.join(root, *p) for p in (("tasks", "translation.py"),
                      ("tasks", "fairseq_task.py"), ("sequence_generator.py",), ("search.py",),
                      ("hub_utils.py",))])
    call = re.compile(r"(?<![\w.])(?:utils\.|options\.)?(eval|eval_str_list|eval_str_dict|eval_bool)"
                      r"\(\s*([\w.]+)")
    found = set()
    for path in files:
        for line in open(path, encoding="utf-8"):
            for _, argument in call.findall(line.split("#")[0]):
                found.add(argument.rsplit(".", 1)[-1])
    assert found, "the scan finds nothing: its pattern no longer fits fairseq"
    assert found <= set(EVALUATED_FIELDS), found - set(EVALUATED_FIELDS)


def test_a_process_of_another_task_is_left_to_fairseq(tmp_path, monkeypatch):
    """Without our task in the process, a checkpoint that names nothing of ours gets no allow-list
    (it is fairseq's to build, as without the plugin); one that names ours anywhere gets ours."""
    from fairseq_grafusion import checkpoint_policy

    monkeypatch.setattr(checkpoint_policy, "_claimed", [])
    plain_lm = {"cfg": {"model": {"_name": "transformer_lm"}, "task": {"_name": "language_modeling"}}}
    assert checkpoint_policy.expected(plain_lm) == ()
    claims = {"cfg": {"model": {"_name": "fconv", "arch": "grafusion_base"},
                      "task": {"_name": "translation"}}}
    assert checkpoint_policy.expected(claims) == (checkpoint_policy.ours(),)
    with pytest.raises(GraFusionError, match="arch says 'grafusion_base'"):
        checkpoint_policy.check(claims, "x.pt", checkpoint_policy.expected(claims))
    monkeypatch.setattr(checkpoint_policy, "_claimed", [True])
    assert checkpoint_policy.expected(plain_lm) == (checkpoint_policy.ours(),)


# ---- resolve() against fairseq's own builders ----
class Reached(Exception):
    """Raised by a stubbed builder: carries the class fairseq reached."""


def _reached(cls, *args, **kwargs):
    raise Reached(cls)


@pytest.fixture
def stubbed_builders(monkeypatch):
    """Every registered model's ``build_model`` and task's ``setup_task`` raise :class:`Reached`
    with their class instead of building."""
    from fairseq.models import MODEL_REGISTRY
    from fairseq.tasks import TASK_REGISTRY

    for cls in set(MODEL_REGISTRY.values()):
        monkeypatch.setattr(cls, "build_model", classmethod(_reached))
    for cls in set(TASK_REGISTRY.values()):
        monkeypatch.setattr(cls, "setup_task", classmethod(_reached))


def fairseq_reaches(build, cfg):
    try:
        build(cfg)
    except Reached as e:
        return e.args[0]
    except Exception:
        return None
    return None


def test_resolve_picks_what_fairseq_builds(stubbed_builders):
    """On random model / task sections (dicts as OmegaConf reads them, and Namespaces), fairseq's
    ``build_model`` and ``setup_task`` reach no class but the ones :func:`resolve` names (or
    none, where fairseq itself fails first); where two naming fields disagree, resolve refuses."""
    from fairseq import models, tasks
    from omegaconf import OmegaConf

    from fairseq_grafusion import checkpoint_policy

    rng = random.Random(27)
    model_names = ["grafusion_tiny", "filter_base", "fconv", "transformer", "roberta_base",
                   "lstm", None, ""]
    task_names = ["xmrc_span", "sa_graph_pretrain", "translation", "masked_lm",
                  "language_modeling", None, ""]
    reached = refused = 0
    for trial in range(400):
        model = {k: rng.choice(model_names) for k in ("_name", "arch") if rng.random() < 0.8}
        task = {k: rng.choice(task_names) for k in ("_name", "task") if rng.random() < 0.8}
        as_namespace = rng.random() < 0.3
        state = {"cfg": {"model": argparse.Namespace(**model) if as_namespace else dict(model),
                         "task": argparse.Namespace(**task) if as_namespace else dict(task)}}
        try:
            plan = checkpoint_policy.resolve(state, "x.pt")
        except GraFusionError as e:
            refused += 1
            assert "names" in str(e) or "says" in str(e), e
            continue
        cfg = OmegaConf.create({"model": state["cfg"]["model"], "task": state["cfg"]["task"]},
                               flags={"allow_objects": True})
        built = fairseq_reaches(lambda c: models.build_model(c.model, None), cfg)
        set_up = fairseq_reaches(lambda c: tasks.setup_task(c.task), cfg)
        assert built in (None, checkpoint_policy.model_class(plan.model)), (model, plan, built)
        assert set_up in (None, checkpoint_policy.task_class(plan.task)), (task, plan, set_up)
        reached += built is not None and set_up is not None
    assert reached > 30 and refused > 100, (reached, refused)
