#!/usr/bin/env bash
# TyDiQA-GoldP, the paper's Table 2: one model per variant and seed fine-tuned on the translated
# training data of every language at once, evaluated on every language's GoldP dev file with
# SQuAD v1.1's metric; bn and sw have no dependency parser, so the +ad / +adp rows read n/a there.
# The files to download and how they pair: examples/tydiqa/README.md.
#
#   examples/tydiqa/run.sh               # GPU: XLMR=xlmr.base DATA=downloads (see README.md)
#   MINI=1 examples/tydiqa/run.sh        # CPU miniature on the bundled sample (tiny arch, 2 seeds)
#
# Variables (defaults in examples/recipe_lib.sh): ARCH VARIANTS SEEDS LANGS WORK DATA XLMR
# STANZA_DIR MT_MODEL BATCH LR WARMUP EPOCHS GRID NGPU NO_PARSER TRAIN_EXTRA, and STEP / CELL (a job array)
set -euo pipefail
# no cd: every path given (WORK, DATA, XLMR, ...) is relative to the directory it is run from
REPO=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO/examples/recipe_lib.sh"

METRIC=squad           # XTREME scores TyDiQA-GoldP with SQuAD v1.1's script, in every language
EVAL_SPLIT=valid       # TyDiQA-GoldP has no public test set: the paper reports the dev set

if [[ ${MINI:-0} == 1 ]]; then
    # The bundled XQuAD sample stands in for TyDiQA-GoldP; ar plays a language without a
    # parser (NO_PARSER), as bn and sw do in the paper.
    S=$REPO/examples/sample
    LANGS=${LANGS:-"de ar"}
    NO_PARSER=${NO_PARSER:-ar}
    WORK=${WORK:-runs/tydiqa-mini}
    VARIANTS=${VARIANTS:-"a ad"}; WARMUP=${WARMUP:-5}
    sample_inputs  # recipe_lib.sh: the sample's files and the CPU miniature's settings
else
    DATA=${DATA:-downloads}
    : "${XLMR:?set XLMR to an XLM-R directory: fairseq release (model.pt, dict.txt, sentencepiece.bpe.model) or HuggingFace (config.json, model.safetensors, sentencepiece.bpe.model)}"
    LANGS=${LANGS:-"en ar bn fi id ko ru sw te"}
    NO_PARSER=${NO_PARSER:-"bn sw"}  # no Stanza parser (paper, Table 2)
    WORK=${WORK:-runs/tydiqa}
    # The paper trains on SQuAD v1.1 translated into each target language.  XTREME's SQuAD
    # translations cover ar, ru (and MLQA/XQuAD languages) only; for bn fi id ko sw te use
    # MT_MODEL (TRAIN_TGT=- translates) or XTREME's translations of TyDiQA-GoldP's English
    # training part (TRAIN_SRC=$DATA/tydiqa/train.en.json,
    # TRAIN_TGT=$DATA/xtreme_translations/TyDiQA-GoldP/translate-train/tydiqa.translate.train.en-{lang}.json)
    TRAIN_SRC=${TRAIN_SRC:-$DATA/squad/train-v1.1.json}
    TRAIN_TGT=${TRAIN_TGT:-$DATA/xtreme_translations/SQuAD/translate-train/squad.translate.train.en-{lang}.json}
    DEV_TGT=${DEV_TGT:-$DATA/tydiqa/dev.{lang}.json}       # examples/tydiqa/split_by_language.py
    DEV_SRC=${DEV_SRC:-$DATA/xtreme_translations/TyDiQA-GoldP/translate-test/tydiqa.translate.test.{lang}-en.json}
    SPM=$XLMR; DICT=$XLMR  # the files in it (a HuggingFace directory: dict.txt from its vocabulary)
    PARALLEL=${PARALLEL:-$DATA/parallel/train.en-{lang}.en $DATA/parallel/train.en-{lang}.{lang}}
    # appendix C, TyDiQA-GoldP: batch 64, lr 3e-5, warm-up 5% (the best +adp setting)
    BATCH=${BATCH:-64}; LR=${LR:-3e-5}; WARMUP=${WARMUP:-5}
fi

run_step   # STEP=prepare|cells|cell|table: the steps of a job array (examples/slurm/grid.sbatch)
