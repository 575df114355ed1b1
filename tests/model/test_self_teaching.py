"""Criterion ``xmrc_span_self_teaching`` (FILTER's self-teaching loss): the KL term against loops,
the student's loss term by term (KL on the target stream only, the English stream untouched), and
a tiny FILTER teacher + student trained by fairseq-train."""
import math
import os

import pytest
import torch
import torch.nn.functional as F
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import logged, run_fairseq, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.criterions.self_teaching import self_teaching_kl


def kl_by_loops(student, teacher, pad, temperature, mode):
    """KL(p_teacher || p_student) at temperature T, one Python float at a time."""
    def softmax(values):
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        return [e / sum(exps) for e in exps]

    def kl(s_values, t_values):
        p_s = softmax([v / temperature for v in s_values])
        p_t = softmax([v / temperature for v in t_values])
        return sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s) if pt > 0)

    rows = [[j for j in range(student.size(1)) if not pad[b, j]] for b in range(student.size(0))]
    if mode == "example":
        return sum(kl([student[b, j].item() for j in keep], [teacher[b, j].item() for j in keep])
                   for b, keep in enumerate(rows))
    # FILTER's code: every kept logit of the batch in one distribution, divided by their number
    s_flat = [student[b, j].item() for b, keep in enumerate(rows) for j in keep]
    t_flat = [teacher[b, j].item() for b, keep in enumerate(rows) for j in keep]
    return kl(s_flat, t_flat) / len(s_flat) * student.size(0)


@pytest.mark.parametrize("mode", ["example", "flat-batch"])
@pytest.mark.parametrize("temperature", [1.0, 6.0])
def test_kl_term_matches_the_loop_reference(mode, temperature):
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 9) * 3, torch.randn(4, 9) * 3
    pad = torch.zeros(4, 9, dtype=torch.bool)
    pad[1, 5:], pad[3, 2:] = True, True
    student = student.masked_fill(pad, float("-inf"))  # as the models give them
    teacher = teacher.masked_fill(pad, float("-inf"))
    student.requires_grad_(True)
    got = self_teaching_kl(student, teacher, pad, temperature, mode)
    want = kl_by_loops(student.detach(), teacher, pad, temperature, mode)
    assert got.item() == pytest.approx(want, rel=1e-5)
    got.backward()
    assert torch.isfinite(student.grad).all() and (student.grad[pad] == 0).all()
    # the teacher itself has no KL to itself
    assert self_teaching_kl(teacher, teacher, pad, temperature, mode).item() == pytest.approx(0, abs=1e-6)


@pytest.fixture(scope="module")
def teacher(marker_data, tmp_path_factory):
    """FILTER's phase 1: a filter_tiny trained with the plain xmrc_span loss."""
    save = str(tmp_path_factory.mktemp("teacher") / "ck")
    run_fairseq("train", *train_args(marker_data, save, updates=150, arch="filter_tiny"))
    return os.path.join(save, "checkpoint_last.pt")


def setup(data, *extra):
    args = options.parse_args_and_arch(options.get_training_parser(),
                                       train_args(data, "/nonexistent", *extra, arch="filter_tiny"))
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    sample = dataset.collater([dataset[i] for i in range(8)])
    return task.build_model(cfg.model).eval(), task.build_criterion(cfg.criterion), sample


def test_student_loss_has_the_kl_term_on_the_target_stream_only(marker_data, teacher):
    alpha, temperature = 0.3, 4.0
    student, criterion, sample = setup(
        marker_data, "--criterion", "xmrc_span_self_teaching", "--self-teaching-teacher", teacher,
        "--self-teaching-alpha", str(alpha), "--self-teaching-temperature", str(temperature),
        "--self-teaching-kl", "example")
    assert not list(criterion.parameters())  # the teacher is no parameter of the training
    with torch.no_grad():
        loss, _, log = criterion(student, sample)
        out = student(**sample["net_input"])
        ref_teacher = checkpoint_utils.load_model_ensemble([teacher])[0][0].eval()
        soft = ref_teacher(**sample["net_input"])
    spans = sample["target"]
    pad = sample["net_input"]["tgt_tokens"].eq(1)

    def nll(logits, gold):
        return -sum(torch.log_softmax(logits[b], -1)[gold[b]] for b in range(len(gold))).item()

    src_ce = nll(out["src_start"], spans[:, 0]) + nll(out["src_end"], spans[:, 1])
    tgt_ce = nll(out["tgt_start"], spans[:, 2]) + nll(out["tgt_end"], spans[:, 3])
    kl = sum(kl_by_loops(out[k], soft[k], pad, temperature, "example") for k in ("tgt_start", "tgt_end"))
    assert kl > 0.01  # an untrained student and a trained teacher disagree
    want_tgt = (1 - alpha) * tgt_ce + alpha * temperature ** 2 * kl
    assert log["src_loss"].item() == pytest.approx(src_ce, rel=1e-4)  # English: plain CE
    assert log["tgt_loss"].item() == pytest.approx(want_tgt, rel=1e-4)
    assert log["tgt_kl"].item() == pytest.approx(kl, rel=1e-4)
    assert loss.item() == pytest.approx(src_ce + want_tgt, rel=1e-4)

    # the plain criterion on the same model: the same English term, no KL anywhere
    _, plain, _ = setup(marker_data)
    with torch.no_grad():
        plain_loss, _, plain_log = plain(student, sample)
    assert plain_log["src_loss"].item() == pytest.approx(log["src_loss"].item(), rel=1e-6)
    assert plain_loss.item() == pytest.approx(src_ce + tgt_ce, rel=1e-4)
    assert "tgt_kl" not in plain_log

    # the teacher follows the student's dtype (fp16 training)
    with torch.no_grad():
        half_loss, _, _ = criterion(student.half(), sample)
    assert next(criterion.teachers[0].parameters()).dtype == torch.float16
    assert half_loss.item() == pytest.approx(loss.item(), rel=0.05)


def test_the_default_is_filters_loss_on_a_padded_batch(marker_data, teacher):
    """FILTER's ``FilterForQuestionAnswering.forward`` with self-teaching, written out: CE means
    over the batch, start and end averaged, the KL over ``masked_select`` of the target input's
    non-padding logits with ``KLDivLoss(reduction="batchmean")``, T^2, alpha.  Ours sums start
    and end over the examples (eq. 5) and fairseq divides by the examples: twice FILTER's value."""
    alpha, temperature = 0.3, 4.0
    student, criterion, sample = setup(
        marker_data, "--criterion", "xmrc_span_self_teaching", "--self-teaching-teacher", teacher,
        "--self-teaching-alpha", str(alpha), "--self-teaching-temperature", str(temperature))
    with torch.no_grad():
        loss, sample_size, _ = criterion(student, sample)
        out = student(**sample["net_input"])
        soft = checkpoint_utils.load_model_ensemble([teacher])[0][0].eval()(**sample["net_input"])
    mask = sample["net_input"]["tgt_tokens"].ne(1)  # FILTER's attention_mask[0]
    assert not mask.all()  # a padded batch
    spans = sample["target"]
    ce = torch.nn.CrossEntropyLoss()
    kd_loss_fct = torch.nn.KLDivLoss(reduction="batchmean")

    def calc_loss(sp, ep, sl, el):
        return (ce(sl, sp) + ce(el, ep)) / 2

    def calc_masked_kd_loss(sp, ep, sl, el):
        sl_sel, el_sel = torch.masked_select(sl, mask), torch.masked_select(el, mask)
        sp_sel, ep_sel = torch.masked_select(sp, mask), torch.masked_select(ep, mask)
        s_kd = kd_loss_fct(F.log_softmax(sl_sel / temperature, dim=-1),
                           F.softmax(sp_sel / temperature, dim=-1)) * temperature ** 2
        e_kd = kd_loss_fct(F.log_softmax(el_sel / temperature, dim=-1),
                           F.softmax(ep_sel / temperature, dim=-1)) * temperature ** 2
        return (s_kd + e_kd) / 2

    loss_other = calc_loss(spans[:, 2], spans[:, 3], out["tgt_start"], out["tgt_end"])
    loss_eng = calc_loss(spans[:, 0], spans[:, 1], out["src_start"], out["src_end"])
    kd_loss = calc_masked_kd_loss(soft["tgt_start"], soft["tgt_end"], out["tgt_start"], out["tgt_end"])
    assert kd_loss > 1e-3  # an untrained student and a trained teacher disagree
    filter_loss = (1.0 - alpha) * loss_other + alpha * kd_loss + loss_eng
    assert (loss / sample_size).item() == pytest.approx(2 * filter_loss.item(), rel=1e-5)


def test_teacher_then_student_learn_the_synthetic_task(marker_data, teacher, tmp_path):
    save = tmp_path / "student"
    # the per-example KL, large enough to read in the log (FILTER's flat-batch KL of this batch is
    # about a thousandth of it, below the log's 3 decimals)
    proc = run_fairseq("train", *train_args(
        marker_data, str(save), "--criterion", "xmrc_span_self_teaching",
        "--self-teaching-teacher", teacher, "--self-teaching-kl", "example", updates=150,
        arch="filter_tiny"))
    out = proc.stdout + proc.stderr
    first, last = logged(out, "train_inner", "tgt_ce")[0], logged(out, "valid", "tgt_ce")[-1]
    assert last < 0.2 * first, (first, last)
    assert logged(out, "valid", "tgt_start_acc")[-1] > 90
    kl = logged(out, "train_inner", "tgt_kl")
    assert kl[0] > 10 * max(kl[-1], 1e-3), kl  # the student comes to agree with the teacher
    state = load_state(save / "checkpoint_last.pt")
    assert state["criterion"] is None  # the teacher is not saved with the student
    assert state["model"].keys() == load_state(teacher)["model"].keys()


def test_bad_teacher_is_one_line(marker_data, tmp_path):
    proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / "ck"), "--criterion",
                                            "xmrc_span_self_teaching", arch="filter_tiny"), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "fairseq-grafusion: error: --criterion xmrc_span_self_teaching needs --self-teaching-teacher "
        "CHECKPOINT (a model trained first with --criterion xmrc_span)")
    proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / "ck"), "--criterion",
                                            "xmrc_span_self_teaching", "--self-teaching-teacher",
                                            str(tmp_path / "none.pt"), arch="filter_tiny"), check=False)
    assert proc.stderr.strip().splitlines()[-1].endswith("none.pt: no such checkpoint file")
