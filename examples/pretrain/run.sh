#!/usr/bin/env bash
# GraFusion-MRC +adp: pre-train the SA-Graph on parallel sentences (task sa_graph_pretrain, paper
# section 3.4), then fine-tune for span extraction (task xmrc_span) from the pre-trained weights.
# See examples/pretrain/README.md for every hyper-parameter and where it comes from.
#
#   examples/pretrain/run.sh mini                  # CPU, minutes: bundled en-ro sample, tiny model
#   examples/pretrain/run.sh full mlqa|tydiqa      # GPU: grafusion_base from XLM-R, paper settings
#
# Environment (full): PARALLEL=<parallel-bin dir> QA=<qa-bin dir> XLMR=<xlmr.base dir>
#   OUT (default runs/adp), ARCH (grafusion_base), NGPU (all visible), PRETRAIN_UPDATES (20000),
#   EPOCHS (2), PYTHON (python), EXTRA_ARGS (more fairseq-train options for both runs, e.g.
#   "--cpu --memory-efficient-fp16" for a CPU smoke test of this recipe at tiny sizes).
set -euo pipefail
# no cd: every path given (OUT, PARALLEL, QA, XLMR) is relative to the directory it is run from;
# each step's output goes to OUT/logs, and the first step that fails stops the run naming it
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/examples/sample/steps.sh"

MODE=${1:-mini}
PYTHON=${PYTHON:-python}
TRAIN=("$PYTHON" -m fairseq_cli.train)
USER_DIR=$("$PYTHON" -m fairseq_grafusion.cli.user_dir)

count() {  # examples in a binarized split
    "$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['size'])" "$1.meta.json"
}

if [[ $MODE == mini ]]; then
    OUT=${OUT:-runs/adp-mini}
    # 1. data: the bundled en-ro sample -> $OUT/data/qa-bin (QA) and $OUT/data/parallel-bin
    #    (275 + 49 sentence pairs); the same dict.txt in both
    [[ -f $OUT/data/parallel-bin/train.meta.json ]] || step "grafusion-preprocess all --sample" \
        "$OUT/logs/preprocess.log" "$PYTHON" -m fairseq_grafusion.preprocess all --out "$OUT/data"
    COMMON=(--user-dir "$USER_DIR" --arch grafusion_tiny --cpu --optimizer adam --lr 1e-3
            --log-format simple --log-interval 10 --no-progress-bar --no-epoch-checkpoints --seed 1)
    # 2. pre-training: TLM + L_SA, mono-/cross-lingual masking half of the batches each
    step "pre-training" "$OUT/logs/pretrain.log" \
        "${TRAIN[@]}" "$OUT/data/parallel-bin" --task sa_graph_pretrain --criterion sa_graph_pretrain \
        "${COMMON[@]}" --batch-size 8 --max-update 200 --save-dir "$OUT/pretrain"
    # 3. fine-tuning from the pre-trained SA-Graph: embeddings, layers and graph copied, span
    #    heads fresh (--finetune-from-model "$OUT/pretrain/checkpoint_last.pt" does the same)
    step "fine-tuning" "$OUT/logs/finetune.log" \
        "${TRAIN[@]}" "$OUT/data/qa-bin" --task xmrc_span --criterion xmrc_span "${COMMON[@]}" \
        --pretrained-sagraph "$OUT/pretrain/checkpoint_last.pt" \
        --batch-size 8 --max-update 100 --save-dir "$OUT/finetune"
    echo "done: $OUT/pretrain/checkpoint_last.pt -> $OUT/finetune/checkpoint_best.pt"
    exit 0
fi

[[ $MODE == full ]] || { echo "usage: $0 mini | full mlqa|tydiqa" >&2; exit 2; }
DATASET=${2:?"full needs mlqa or tydiqa (the fine-tuning settings of appendix C)"}
: "${PARALLEL:?set PARALLEL to grafusion-preprocess's parallel-bin directory}"
: "${QA:?set QA to grafusion-preprocess's qa-bin directory}"
: "${XLMR:?set XLMR to an XLM-R fairseq checkpoint directory (model.pt, dict.txt)}"
OUT=${OUT:-runs/adp-$DATASET}
ARCH=${ARCH:-grafusion_base}
NGPU=${NGPU:-$(nvidia-smi -L | wc -l)}
EPOCHS=${EPOCHS:-2}
read -r -a EXTRA <<< "${EXTRA_ARGS:-}"

# 1. pre-training (the paper gives none of these; see examples/pretrain/README.md)
PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-20000}
PRETRAIN_PAIRS=256                                     # sentence pairs per update
PRETRAIN_PER_GPU=${PRETRAIN_PER_GPU:-64}
PRETRAIN_FREQ=$(( (PRETRAIN_PAIRS + PRETRAIN_PER_GPU * NGPU - 1) / (PRETRAIN_PER_GPU * NGPU) ))
step "pre-training" "$OUT/logs/pretrain.log" \
"${TRAIN[@]}" "$PARALLEL" --user-dir "$USER_DIR" --task sa_graph_pretrain --criterion sa_graph_pretrain \
    --arch "$ARCH" --pretrained-xlmr "$XLMR" --fp16 \
    --batch-size "$PRETRAIN_PER_GPU" --update-freq "$PRETRAIN_FREQ" \
    --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 \
    --clip-norm 1.0 --lr 1e-4 --lr-scheduler polynomial_decay \
    --warmup-updates $(( PRETRAIN_UPDATES / 20 )) --total-num-update "$PRETRAIN_UPDATES" \
    --max-update "$PRETRAIN_UPDATES" --mask-prob 0.15 --mono-lingual-prob 0.5 \
    --save-interval-updates 2000 --keep-interval-updates 2 --no-epoch-checkpoints \
    --validate-interval-updates 2000 --skip-invalid-size-inputs-valid-test \
    --log-format simple --log-interval 100 --save-dir "$OUT/pretrain" "${EXTRA[@]}"

# 2. fine-tuning (appendix C): MLQA bs 32, lr 5e-5, warmup 10%; TyDiQA bs 64, lr 3e-5, warmup 5%
case $DATASET in
    mlqa)   BSZ=32; LR=5e-5; WARMUP_PCT=10 ;;
    tydiqa) BSZ=64; LR=3e-5; WARMUP_PCT=5 ;;
    *) echo "unknown data set $DATASET: mlqa or tydiqa" >&2; exit 2 ;;
esac
PER_GPU=${PER_GPU:-$(( BSZ / NGPU < 32 ? BSZ / NGPU : 32 ))}
FREQ=$(( BSZ / (PER_GPU * NGPU) ))
(( PER_GPU * NGPU * FREQ == BSZ )) || { echo "batch $BSZ does not split over $NGPU GPUs" >&2; exit 2; }
WINDOWS=$(count "$QA/train")
# validation F1 / EM picks checkpoint_best.pt when the gold answers sit next to the split
# (QA/valid.tgt.json, SQuAD format); otherwise the validation loss does
SELECT=()
[[ -f $QA/valid.tgt.json ]] && SELECT=(--eval-span-f1 --best-checkpoint-metric f1
                                      --maximize-best-checkpoint-metric)
TOTAL=$(( EPOCHS * ((WINDOWS + BSZ - 1) / BSZ) ))
step "fine-tuning" "$OUT/logs/finetune.log" \
"${TRAIN[@]}" "$QA" --user-dir "$USER_DIR" --task xmrc_span --criterion xmrc_span --arch "$ARCH" \
    --pretrained-sagraph "$OUT/pretrain/checkpoint_last.pt" --fp16 \
    --batch-size "$PER_GPU" --update-freq "$FREQ" \
    --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 \
    --lr "$LR" --lr-scheduler polynomial_decay --warmup-updates $(( TOTAL * WARMUP_PCT / 100 )) \
    --total-num-update "$TOTAL" --max-update "$TOTAL" \
    "${SELECT[@]}" \
    --no-epoch-checkpoints --log-format simple --log-interval 100 --save-dir "$OUT/finetune" \
    "${EXTRA[@]}"
echo "done: $OUT/finetune/checkpoint_best.pt"
