#!/usr/bin/env bash
# MLQA, the paper's Table 1: one model per variant and seed fine-tuned on the translated training
# data of every language at once (translate-train-all), evaluated on every MLQA test language with
# MLQA's metric, and a table of mean ± std over the seeds with the Avg. column.
# The files to download and how they pair: examples/mlqa/README.md.
#
#   examples/mlqa/run.sh                 # GPU: XLMR=xlmr.base DATA=downloads (see README.md)
#   MINI=1 examples/mlqa/run.sh          # CPU miniature on the bundled sample (tiny arch, 2 seeds)
#
# Variables (defaults in examples/recipe_lib.sh): ARCH VARIANTS SEEDS LANGS WORK DATA XLMR
# STANZA_DIR MT_MODEL BATCH LR WARMUP EPOCHS GRID NGPU TRAIN_EXTRA, and STEP / CELL (a job array)
set -euo pipefail
# no cd: every path given (WORK, DATA, XLMR, ...) is relative to the directory it is run from
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/examples/recipe_lib.sh"

METRIC=auto            # MLQA's official script: per-language punctuation, articles, zh characters
EVAL_SPLIT=test
NO_PARSER=${NO_PARSER:-}  # Stanza parses every MLQA language

if [[ ${MINI:-0} == 1 ]]; then
    # The bundled XQuAD sample stands in for MLQA: 47 training and 27 test questions per
    # language; XQuAD's English original stands in for the English machine translation.
    S=$REPO/examples/sample
    LANGS=${LANGS:-"de zh ar"}
    WORK=${WORK:-runs/mlqa-mini}
    VARIANTS=${VARIANTS:-"filter ad"}; WARMUP=${WARMUP:-10}
    EVAL_SPLIT=valid
    sample_inputs  # recipe_lib.sh: the sample's files and the CPU miniature's settings
else
    DATA=${DATA:-downloads}
    : "${XLMR:?set XLMR to an XLM-R directory: fairseq release (model.pt, dict.txt, sentencepiece.bpe.model) or HuggingFace (config.json, model.safetensors, sentencepiece.bpe.model)}"
    LANGS=${LANGS:-"en ar de es hi vi zh"}
    WORK=${WORK:-runs/mlqa}
    TRAIN_SRC=${TRAIN_SRC:-$DATA/squad/train-v1.1.json}
    TRAIN_TGT=${TRAIN_TGT:-$DATA/xtreme_translations/SQuAD/translate-train/squad.translate.train.en-{lang}.json}
    DEV_TGT=${DEV_TGT:-$DATA/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json}
    TEST_TGT=${TEST_TGT:-$DATA/MLQA_V1/test/test-context-{lang}-question-{lang}.json}
    # English machine translations of the dev / test files (XTREME translate-test); where a
    # file is missing, MT_MODEL translates that split
    DEV_SRC=${DEV_SRC:--}
    TEST_SRC=${TEST_SRC:-$DATA/xtreme_translations/MLQA/translate-test/test-context-{lang}-question-{lang}.json}
    # MLQA's own English side of every question (VARIANTS=filter-published: FILTER's protocol)
    DEV_SRC_OWN=${DEV_SRC_OWN:-$DATA/MLQA_V1/dev/dev-context-en-question-en.json}
    TEST_SRC_OWN=${TEST_SRC_OWN:-$DATA/MLQA_V1/test/test-context-en-question-en.json}
    SPM=$XLMR; DICT=$XLMR  # the files in it (a HuggingFace directory: dict.txt from its vocabulary)
    PARALLEL=${PARALLEL:-$DATA/parallel/train.en-{lang}.en $DATA/parallel/train.en-{lang}.{lang}}
    # appendix C, MLQA: batch 32, lr 5e-5, warm-up 10% (the best +adp setting)
    BATCH=${BATCH:-32}; LR=${LR:-5e-5}; WARMUP=${WARMUP:-10}
fi

run_step   # STEP=prepare|cells|cell|table: the steps of a job array (examples/slurm/grid.sbatch)
