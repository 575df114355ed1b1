#!/usr/bin/env bash
# The paper's protocol (translate-train-all) end to end on the bundled XQuAD sample (this
# directory: English with German, Chinese and Arabic): one grafusion-preprocess run per (English,
# target) pair (the alignment model estimated on each pair's training text and applied to its
# valid split), `combine` into one directory, one tiny GraFusion-MRC +ad trained from scratch on
# the three languages at once with per-language F1 in validation, predictions per language, F1 /
# EM per language with the Avg. column.
#
# Runs from any directory with the package's commands on PATH:
#   bash examples/run_sample.sh                   # a checkout: README command 1 (installs .venv/)
#   bash "$(grafusion-user-dir --sample)/run.sh"  # an installed package (pip install .)
# Writes OUT (default sample-run, in the current directory); each step's output is in
# OUT/logs/, and the first step that fails stops the run with its error line.  EPOCHS (default
# 3) or UPDATES change the training length.
set -euo pipefail
S=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)  # the sample's files, wherever it is installed
. "$S/steps.sh"
for command in grafusion-user-dir grafusion-preprocess fairseq-train; do
  command -v "$command" > /dev/null || { echo "${0##*/}: $command is not on PATH: activate the" \
    "environment fairseq-grafusion is installed in (or run examples/run_sample.sh in a checkout)" >&2
    exit 127; }
done
OUT=${OUT:-sample-run}
LOGS=$OUT/logs
LANGS="de zh ar"
USER_DIR=$(grafusion-user-dir)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

pairs=() evals=()
for xx in $LANGS; do
  echo "== 1/5 grafusion-preprocess all: en-$xx -> $OUT/en-$xx (pair, words, align, parse, binarize)"
  step "grafusion-preprocess en-$xx" "$LOGS/preprocess.en-$xx.log" \
    grafusion-preprocess all --out "$OUT/en-$xx" --src-lang en --tgt-lang "$xx" \
    --qa train "$S/qa/train.en.json" "$S/qa/train.$xx.json" \
    --qa valid "$S/qa/valid.en.json" "$S/qa/valid.$xx.json" \
    --align-extra "$S/parallel/train.en-$xx.en" "$S/parallel/train.en-$xx.$xx" \
    --spm "$S/spm-xquad/sentencepiece.bpe.model" --dict "$S/spm-xquad/dict.txt"
  sed -n '/^\[align report\]/,/^done/p' "$LOGS/preprocess.en-$xx.log"
  pairs+=(--pair "$xx" "$OUT/en-$xx/qa-bin")
  evals+=(--eval "$xx" "$OUT/data-bin/valid.tgt.$xx.json" "$OUT/pred.$xx.json")
done

echo "== 2/5 grafusion-preprocess combine -> $OUT/data-bin (training data of every language mixed)"
step "grafusion-preprocess combine" "$LOGS/combine.log" \
  grafusion-preprocess combine --out "$OUT/data-bin" "${pairs[@]}"

echo "== 3/5 fairseq-train --task xmrc_span --arch grafusion_tiny --graph align,dep (f1_<lang>, f1_avg in validation)"
length=(--max-epoch "${EPOCHS:-3}")
[ -z "${UPDATES:-}" ] || length=(--max-update "$UPDATES")
step "fairseq-train" "$LOGS/train.log" \
  fairseq-train "$OUT/data-bin" --user-dir "$USER_DIR" \
  --task xmrc_span --criterion xmrc_span --arch grafusion_tiny --graph align,dep \
  --optimizer adam --lr 1e-3 --batch-size 8 "${length[@]}" --cpu --seed 1 \
  --eval-span-f1 --best-checkpoint-metric f1_avg --maximize-best-checkpoint-metric \
  --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --log-format simple --log-interval 10 \
  --no-progress-bar
awk -F' [|] ' '/[|] valid [|]/ { line = ""
    for (i = 1; i <= NF; i++) if ($i ~ /^epoch [0-9]+$/ || $i ~ /^(f1|em)_[a-z]+ /) line = line "  " $i
    print "   " line } /done training/' "$LOGS/train.log"

echo "== 4/5 grafusion-predict (valid split, every language) -> $OUT/pred.{de,zh,ar}.json"
step "grafusion-predict" "$LOGS/predict.log" \
  grafusion-predict --path "$OUT/checkpoints/checkpoint_best.pt" --data "$OUT/data-bin" \
  --split valid --output "$OUT/pred.{lang}.json" --cpu
sed -n 's/^.* | \(.*questions answered.*\)$/   \1/p' "$LOGS/predict.log"

echo "== 5/5 grafusion-evaluate + grafusion-results: F1 / EM per language and Avg. -> $OUT/table.md"
step "grafusion-evaluate" "$LOGS/evaluate.log" \
  grafusion-evaluate "${evals[@]}" --json "$OUT/scores.json"
step "grafusion-results" "$LOGS/results.log" \
  grafusion-results --row "+ad" "$OUT/scores.json" --languages $LANGS --output "$OUT/table.md"
cat "$OUT/table.md"

echo "(a tiny model trained from scratch for a minute on 141 questions: the numbers show the"
echo " pipeline working, not the method; docs/fine-tuning.md trains from XLM-R on a GPU)"
