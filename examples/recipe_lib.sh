# Shared steps of the benchmark recipes (examples/mlqa/run.sh, examples/tydiqa/run.sh): the paper's
# protocol (section 4, appendix C) as shell functions driven by variables.  Sourced, not run.
#
# Inputs (set by the recipe before sourcing; '{lang}' in a template is replaced by the language):
#   LANGS            target languages, e.g. "en ar de es hi vi zh" (en: English paired with itself)
#   TRAIN_SRC        English training file (SQuAD v1.1 train-v1.1.json)
#   TRAIN_TGT        template: its translation into {lang} (XTREME translate-train)
#   DEV_TGT, TEST_TGT     templates: the benchmark's own dev / test file of {lang}
#   DEV_SRC, TEST_SRC     templates: their machine translation into English (XTREME translate-test);
#                         '-' (or a missing file) translates with MT_MODEL
#   DEV_SRC_OWN, TEST_SRC_OWN  the dataset's own English side, where it has one (MLQA), for the
#                         row filter-published only (FILTER's protocol)
#   EVAL_SPLIT       the split the table reports (test for MLQA, dev for TyDiQA-GoldP)
#   METRIC           auto (MLQA: per-language MLQA rules) or squad (TyDiQA-GoldP)
#   NO_PARSER        languages without a dependency parser: n/a in the +ad / +adp rows
# Rows (VARIANTS): xlmr-tt, filter, filter-st (FILTER + self-teaching), filter-published, a, ad, adp
# (VARIANT_MODEL / VARIANT_FLAGS below; each row's command lands in the table's notes).
# Settings (environment, with defaults below): ARCH, VARIANTS, SEEDS, WORK, XLMR (fairseq's or
#   HuggingFace's XLM-R directory), XLMR_QA (1: XLMR is fine-tuned on SQuAD), SPM, DICT,
#   STANZA_DIR, MT_MODEL (both directions) or MT_TRAIN_MODEL (en -> {lang}) / MT_TEST_MODEL
#   ({lang} -> en), templates with {lang}, and MT_ARGS (more --mt-* options), ALIGN_EXTRA
#   (template "src_file tgt_file"), PARALLEL (templates for +adp pre-training), BATCH, LR,
#   WARMUP (percent), EPOCHS (or UPDATES, a fixed number of updates), GRID, NGPU, TRAIN_EXTRA,
#   PYTHON, WORKERS (grafusion-preprocess --workers, default 1) and JOBS (language pairs
#   preprocessed side by side, default 1; JOBS x WORKERS about the number of cores).
# Steps (STEP, see run_step): all (default: everything in this process), or a job array's
#   prepare, cells (how many), cell (CELL or $SLURM_ARRAY_TASK_ID: one variant x seed) and table;
#   align-model, shard and merge preprocess the pairs in SHARDS shards (sharded_step).

PYTHON=${PYTHON:-python}
# shell helpers: step NAME LOG COMMAND... stops at the first failure with the command's error line
. "$(dirname "${BASH_SOURCE[0]}")/sample/steps.sh"

user_dir() {  # the installed plugin's directory, for fairseq's --user-dir (any working directory)
    "$PYTHON" -m fairseq_grafusion.cli.user_dir
}

set_defaults() {  # after the recipe has set its own (a recipe's value, or the user's, wins)
    ARCH=${ARCH:-grafusion_base}
    VARIANTS=${VARIANTS:-"xlmr-tt filter filter-st a ad adp"}
    SEEDS=${SEEDS:-"1 2 3 4 5 6 7 8 9 10"}   # the paper averages 10 runs
    EPOCHS=${EPOCHS:-2}
    GRID=${GRID:-0}                          # 1: appendix C's grid search on the dev split first
    NGPU=${NGPU:-1}
    VALID_F1=${VALID_F1:-0}                  # 1: per-language F1 in validation, best checkpoint by f1_avg
    PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-20000}
    read -r -a TRAIN_EXTRA_ARGS <<< "${TRAIN_EXTRA:-}"
}

# each row's model: its family, of ARCH's size (grafusion_base: filter_base, xlmr_translate_train_base)
declare -A VARIANT_MODEL=(
    [xlmr-tt]=xlmr_translate_train    # XLM-R translate-train: plain XLM-R, every language read once
    [filter]=filter                   # FILTER (Fang et al., AAAI 2021): local, fusion, domain layers
    [filter-st]=filter                # FILTER + self-teaching: the FILTER row's run is the teacher
    [filter-published]=filter         # FILTER with its train.sh settings and data (filter_published)
    [a]=grafusion [ad]=grafusion [adp]=grafusion
)
declare -A VARIANT_FLAGS=(
    [a]="--graph align"               # GraFusion-MRC +a
    [ad]="--graph align,dep"          # GraFusion-MRC +ad
    [adp]="--graph align,dep"         # +ad initialised from the SA-Graph pre-training
    [filter-published]="--clip-norm 1.0"
)
declare -A VARIANT_ROW=([xlmr-tt]="XLM-R (translate-train)" [filter]="FILTER"
                        [filter-st]="FILTER + self-teaching" [filter-published]="FILTER (published settings)"
                        [a]="+a" [ad]="+ad" [adp]="+adp")

arch_of() {  # arch_of VARIANT: the architecture of the variant's row
    local family=${VARIANT_MODEL[$1]}
    [[ $family == grafusion ]] && { echo "$ARCH"; return; }
    echo "${family}_${ARCH##*_}"
}

teacher_of() {  # teacher_of SEED: FILTER + self-teaching's teacher, the FILTER row's run of SEED
    echo "$WORK/runs/filter.seed$1/checkpoint_best.pt"
}

log() { echo "== $*" >&2; }

expand() {  # expand TEMPLATE LANG: the template with {lang} replaced
    local template=$1 lang=$2
    echo "${template//\{lang\}/$lang}"
}

source_side() {  # source_side SRC_TEMPLATE LANG TGT_FILE: the English side of one split
    local src tgt=$3
    if [[ $2 == en ]]; then echo "$tgt"; return; fi   # English paired with itself
    src=$(expand "$1" "$2")
    if [[ -z $1 || $1 == - || ! -f $src ]]; then
        [[ -n ${MT_MODEL:-}${MT_TEST_MODEL:-} ]] || { echo "no English translation of $tgt ($src) and no MT_MODEL / MT_TEST_MODEL" >&2; return 1; }
        echo "-"   # grafusion-preprocess translates it with --mt-model / --mt-test-model
    else
        echo "$src"
    fi
}

pair_dir() { echo "$WORK/${PAIRS:-pairs}/en-$1"; }

pair_args() {  # pair_args LANG: the grafusion-preprocess options of the (English, LANG) pair, in
    # the array PAIR_ARGS
    local lang=$1 out train_tgt dev_tgt test_tgt
    out=$(pair_dir "$lang")
    train_tgt=$TRAIN_SRC
    [[ $lang == en ]] || train_tgt=$(expand "$TRAIN_TGT" "$lang")
    dev_tgt=$(expand "$DEV_TGT" "$lang")
    PAIR_ARGS=(--out "$out" --src-lang en --tgt-lang "$lang" --qa train "$TRAIN_SRC" "$train_tgt"
               --qa valid "$(source_side "${DEV_SRC:-}" "$lang" "$dev_tgt")" "$dev_tgt")
    if [[ $EVAL_SPLIT == test ]]; then
        test_tgt=$(expand "$TEST_TGT" "$lang")
        PAIR_ARGS+=(--qa test "$(source_side "${TEST_SRC:-}" "$lang" "$test_tgt")" "$test_tgt")
    fi
    PAIR_ARGS+=(--spm "$SPM" --dict "$DICT" --max-len 384 --doc-stride 128 --workers "${WORKERS:-1}")
    [[ -z ${WINDOW_PAIRING:-} ]] || PAIR_ARGS+=(--window-pairing "$WINDOW_PAIRING")
    [[ -z ${STANZA_DIR:-} ]] || PAIR_ARGS+=(--stanza-dir "$STANZA_DIR")
    [[ -z ${MT_MODEL:-} ]] || PAIR_ARGS+=(--mt-model "$(expand "$MT_MODEL" "$lang")")
    [[ -z ${MT_TRAIN_MODEL:-} ]] || PAIR_ARGS+=(--mt-train-model "$(expand "$MT_TRAIN_MODEL" "$lang")")
    [[ -z ${MT_TEST_MODEL:-} ]] || PAIR_ARGS+=(--mt-test-model "$(expand "$MT_TEST_MODEL" "$lang")")
    if [[ -n ${MT_ARGS:-} ]]; then  # e.g. "--mt-tokenizer moses --mt-bpe fastbpe"
        read -r -a mt_args <<< "$MT_ARGS"
        PAIR_ARGS+=("${mt_args[@]}")
    fi
    if [[ -n ${ALIGN_EXTRA:-} && $lang != en ]]; then
        read -r -a extra <<< "$(expand "$ALIGN_EXTRA" "$lang")"
        PAIR_ARGS+=(--align-extra "${extra[@]}")
    fi
}

preprocess_pairs() {  # one grafusion-preprocess run per (English, target) pair, JOBS at a time
    local lang out args failed=() started=()
    for lang in $LANGS; do
        out=$(pair_dir "$lang")
        if [[ -f $out/qa-bin/$EVAL_SPLIT.meta.json && ${FORCE:-0} != 1 ]]; then
            log "preprocess en-$lang: $out/qa-bin is there (FORCE=1 redoes it)"; continue
        fi
        log "preprocess en-$lang -> $out"
        pair_args "$lang"
        args=("${PAIR_ARGS[@]}")
        mkdir -p "$(dirname "$out")"
        if (( ${JOBS:-1} <= 1 )); then
            step "grafusion-preprocess en-$lang" "$out.log" \
                "$PYTHON" -m fairseq_grafusion.preprocess all "${args[@]}"
            continue
        fi
        # languages side by side: at most JOBS runs at once, each with --workers WORKERS; the
        # others run to their end when one fails, then the recipe stops naming the failed ones
        while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
        rm -f "$out.status"
        ( status=0; "$PYTHON" -m fairseq_grafusion.preprocess all "${args[@]}" > "$out.log" 2>&1 \
              || status=$?; echo "$status" > "$out.status" ) &
        started+=("$lang")
    done
    wait
    local status=0
    for lang in "${started[@]}"; do
        out=$(pair_dir "$lang")
        [[ $(cat "$out.status" 2>/dev/null) == 0 ]] || { failed+=("$lang"); status=$(cat "$out.status" 2>/dev/null || echo 1); }
        rm -f "$out.status"
    done
    if (( ${#failed[@]} )); then
        log "preprocessing failed for: ${failed[*]} (each one's output: $WORK/${PAIRS:-pairs}/en-LANG.log)"
        step_failed "grafusion-preprocess en-${failed[0]}" "$(pair_dir "${failed[0]}").log" "$status"
    fi
}

combine_pairs() {  # combine_pairs [OUT [TRAIN_LANGS]]: one directory, training data of every
    # language (of TRAIN_LANGS) mixed, dev / test per language
    local lang out=${1:-$WORK/data-bin} pairs=() train=()
    for lang in $LANGS; do pairs+=(--pair "$lang" "$(pair_dir "$lang")/qa-bin"); done
    [[ -z ${2:-} ]] || train=(--train-langs $2)
    log "combine ${LANGS// /, } -> $out"
    step "grafusion-preprocess combine" "$out.log" \
        "$PYTHON" -m fairseq_grafusion.preprocess combine --out "$out" "${pairs[@]}" "${train[@]}"
}

prepare_published() {  # the data of FILTER's published settings (VARIANTS=filter-published):
    # windows paired by position, the dataset's own English side at evaluation where it has one
    # (DEV_SRC_OWN / TEST_SRC_OWN; FILTER's protocol, not the paper's translate-test), zh out of
    # the training data -> $WORK/data-bin-published
    local lang train_langs=()
    for lang in $LANGS; do [[ $lang == zh ]] || train_langs+=("$lang"); done
    DEV_SRC=${DEV_SRC_OWN:-${DEV_SRC:-}} TEST_SRC=${TEST_SRC_OWN:-${TEST_SRC:-}} PAIRS=pairs-published \
        WINDOW_PAIRING=position preprocess_pairs
    PAIRS=pairs-published combine_pairs "$WORK/data-bin-published" "${train_langs[*]}"
}

pretrain() {  # +adp: pre-train the SA-Graph on the parallel text of every language (section 3.4)
    local lang pairs=() out=$WORK/pretrain
    [[ -f $out/checkpoint_last.pt ]] && return 0
    mkdir -p "$WORK/parallel"
    for lang in $LANGS; do
        [[ $lang == en ]] && continue
        read -r -a files <<< "$(expand "$PARALLEL" "$lang")"
        step "grafusion-preprocess parallel en-$lang" "$WORK/parallel/en-$lang.log" \
            "$PYTHON" -m fairseq_grafusion.preprocess parallel --out "$WORK/parallel/en-$lang" \
            --src-lang en --tgt-lang "$lang" --parallel train "${files[@]}" --spm "$SPM" \
            --dict "$DICT" ${STANZA_DIR:+--stanza-dir "$STANZA_DIR"}
        pairs+=(--pair "$lang" "$WORK/parallel/en-$lang/parallel-bin")
    done
    step "grafusion-preprocess combine (parallel)" "$WORK/parallel-bin.log" \
        "$PYTHON" -m fairseq_grafusion.preprocess combine --out "$WORK/parallel-bin" "${pairs[@]}"
    log "pre-train the SA-Graph ($PRETRAIN_UPDATES updates) -> $out"
    step "fairseq-train --task sa_graph_pretrain" "$out.log" \
    "$PYTHON" -m fairseq_cli.train "$WORK/parallel-bin" --user-dir "$(user_dir)" \
        --task sa_graph_pretrain --criterion sa_graph_pretrain --arch "$ARCH" $(init_flags pretrain) \
        --batch-size "${PRETRAIN_BATCH:-64}" --optimizer adam --adam-betas '(0.9,0.98)' \
        --lr "${PRETRAIN_LR:-1e-4}" --lr-scheduler polynomial_decay \
        --warmup-updates $((PRETRAIN_UPDATES / 20)) --total-num-update "$PRETRAIN_UPDATES" \
        --max-update "$PRETRAIN_UPDATES" --save-dir "$out" --no-epoch-checkpoints --seed 1 \
        --log-format simple --log-interval 100 --no-progress-bar "${TRAIN_EXTRA_ARGS[@]}"
}

init_flags() {  # init_flags VARIANT|pretrain: where the weights start from (XLMR_QA=1: XLMR is a HuggingFace
                # XLMRobertaForQuestionAnswering fine-tuned on SQuAD, whose qa_outputs start the span heads)
    if [[ $1 == adp ]]; then echo "--pretrained-sagraph $WORK/pretrain/checkpoint_last.pt"
    elif [[ -n ${XLMR:-} && ${XLMR_QA:-0} == 1 && $1 != pretrain ]]; then
        echo "--pretrained-xlmr $XLMR --init-span-heads-from-pretrained"
    elif [[ -n ${XLMR:-} ]]; then echo "--pretrained-xlmr $XLMR"
    fi
}

train_size() {  # train_size DATA: windows of the combined training split
    "$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['size'])" "$1/train.meta.json"
}

data_of() {  # data_of VARIANT: its combined directory (FILTER's published settings have their own)
    if [[ $1 == filter-published ]]; then echo "$WORK/data-bin-published"; else echo "$WORK/data-bin"; fi
}

finetune() {  # finetune VARIANT SEED BATCH LR WARMUP_PERCENT SAVE_DIR
    local variant=$1 seed=$2 batch=$3 lr=$4 warmup=$5 save=$6 per_gpu freq total data max_per_gpu
    # finished: skipped; interrupted (a preempted or requeued job): fairseq-train resumes it
    # from its checkpoint_last.pt
    [[ -f $save.done ]] && { log "$save is there"; return 0; }
    data=$(data_of "$variant")
    max_per_gpu=${MAX_PER_GPU:-32}
    [[ $variant == filter-published ]] && max_per_gpu=4   # FILTER's train.sh: 4 per GPU x 2 steps
    per_gpu=$(( batch / NGPU )); freq=1
    while (( per_gpu > max_per_gpu )); do per_gpu=$(( per_gpu / 2 )); freq=$(( freq * 2 )); done
    total=$(( ( $(train_size "$data") + batch - 1 ) / batch * EPOCHS ))
    [[ -z ${UPDATES:-} ]] || total=$UPDATES   # a fixed number of updates (the test suite's miniatures)
    local eval_flags=()
    if [[ $VALID_F1 == 1 ]]; then  # per-language F1 in the task's validation
        eval_flags=(--eval-span-f1 --eval-span-metric "$METRIC" --best-checkpoint-metric f1_avg
                    --maximize-best-checkpoint-metric)
    fi
    log "fine-tune ${VARIANT_ROW[$variant]} seed $seed (batch $batch, lr $lr, warm-up $warmup%, $total updates) -> $save"
    local criterion=(--criterion xmrc_span)
    [[ $variant != filter-st ]] || criterion=(--criterion xmrc_span_self_teaching
                                              --self-teaching-teacher "$(teacher_of "$seed")")
    local command=("$PYTHON" -m fairseq_cli.train "$data" --user-dir "$(user_dir)" \
        --task xmrc_span "${criterion[@]}" --arch "$(arch_of "$variant")" \
        ${VARIANT_FLAGS[$variant]:-} $(init_flags "$variant") --seed "$seed" \
        --batch-size "$per_gpu" --update-freq "$freq" \
        --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --lr "$lr" \
        --lr-scheduler polynomial_decay --warmup-updates $(( total * warmup / 100 )) \
        --total-num-update "$total" --max-update "$total" "${eval_flags[@]}" \
        --save-dir "$save" --no-epoch-checkpoints --log-format simple --log-interval 50 \
        --no-progress-bar "${TRAIN_EXTRA_ARGS[@]}")
    mkdir -p "$(dirname "$save")"
    printf '%q ' "${command[@]:1}" > "$save.command"   # the row's command, for the table's notes
    step "fairseq-train ${VARIANT_ROW[$variant]} seed $seed" "$save.log" "${command[@]}"
    touch "$save.done"
}

gold_of() {  # gold_of SPLIT LANG: the benchmark's own file (never XTREME's blanked copy)
    if [[ $1 == test ]]; then expand "$TEST_TGT" "$2"; else expand "$DEV_TGT" "$2"; fi
}

predict_and_score() {  # predict_and_score CHECKPOINT SPLIT ROW_NAME SCORES_JSON [DATA]
    local ckpt=$1 split=$2 name=$3 scores=$4 data=${5:-$WORK/data-bin} lang preds=${4%.json}.pred evals=()
    mkdir -p "$preds"
    # one call on the combined directory writes every language's predictions ({lang})
    step "grafusion-predict $name" "$preds/predict.log" \
        "$PYTHON" -m fairseq_grafusion.cli.predict --path "$ckpt" --data "$data" \
        --split "$split" --output "$preds/{lang}.json" ${PREDICT_EXTRA:-}
    for lang in $LANGS; do
        evals+=(--eval "$lang" "$(gold_of "$split" "$lang")" "$preds/$lang.json")
    done
    step "grafusion-evaluate $name" "$preds/evaluate.log" \
        "$PYTHON" -m fairseq_grafusion.cli.evaluate --metric "$METRIC" "${evals[@]}" --name "$name" \
        --json "$scores"
    cat "$preds/evaluate.log"
}

best_of_grid() {  # best_of_grid VARIANT: "BATCH LR WARMUP" with the best dev Avg. F1 (appendix C)
    local variant=$1 b lr w best="" best_f1=-1 f1 scores
    for b in 16 32 64; do for lr in 1e-5 3e-5 5e-5 1e-6 5e-6; do for w in 5 10 15; do
        scores=$WORK/grid/$variant.b$b.lr$lr.w$w.json
        mkdir -p "$WORK/grid"
        finetune "$variant" 1 "$b" "$lr" "$w" "$WORK/grid/$variant.b$b.lr$lr.w$w"
        predict_and_score "$WORK/grid/$variant.b$b.lr$lr.w$w/checkpoint_best.pt" valid "$variant" "$scores" > /dev/null
        f1=$("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['avg']['f1'])" "$scores")
        if "$PYTHON" -c "import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))" "$f1" "$best_f1"; then
            best_f1=$f1; best="$b $lr $w"
        fi
    done; done; done
    log "grid for ${VARIANT_ROW[$variant]}: batch, lr, warm-up = $best (dev Avg. F1 $best_f1)"
    echo "$best"
}

prepare() {  # what every cell reads: the pairs, their combination, FILTER's published data and
    # +adp's pre-training (each skipped when it is there)
    mkdir -p "$WORK/runs" "$WORK/scores"
    preprocess_pairs
    combine_pairs
    [[ " $VARIANTS " != *" filter-published "* ]] || prepare_published
    [[ " $VARIANTS " != *" adp "* ]] || pretrain
}

declare -A CHOSEN=()  # GRID=1: "BATCH LR WARMUP" per variant, from best_of_grid

settings_of() {  # settings_of VARIANT: "BATCH LR WARMUP" of its runs.  FILTER + self-teaching
    # takes its teacher's (the FILTER row's); FILTER's published settings are train.sh's (4 x 2,
    # no warm-up)
    local variant=$1
    [[ $variant != filter-published ]] || { echo "8 5e-6 0"; return; }
    [[ $variant != filter-st ]] || variant=filter
    echo "${CHOSEN[$variant]:-$BATCH $LR $WARMUP}"
}

cells() {  # the table's (variant, seed) cells, one "VARIANT SEED" line each, in order: a job
    # array's task i runs line i + 1
    local variant seed
    for variant in $VARIANTS; do for seed in $SEEDS; do echo "$variant $seed"; done; done
}

locked() {  # locked PATH COMMAND...: COMMAND under an exclusive lock on PATH.lock, so that two
    # array tasks never train one run (a FILTER run is also a self-teaching cell's teacher)
    local fd
    if ! command -v flock > /dev/null; then "${@:2}"; return; fi  # (macOS) one process: no lock needed
    mkdir -p "$(dirname "$1")"
    exec {fd}>"$1.lock"
    flock "$fd"
    "${@:2}"
    exec {fd}>&-
}

run_cell() {  # run_cell INDEX: fine-tune and score the cell on line INDEX + 1 of `cells`; what is
    # finished (a run's .done, a scores file) is skipped, so a requeued task redoes nothing
    local n line variant seed batch lr warmup scores
    [[ $1 =~ ^[0-9]+$ ]] && line=$(cells | sed -n "$(( $1 + 1 ))p")
    if [[ -z ${line:-} ]]; then
        n=$(cells | wc -l)
        echo "cell '$1': the grid has $n cells, 0..$(( n - 1 )) (VARIANTS x SEEDS)" >&2; return 2
    fi
    read -r variant seed <<< "$line"
    read -r batch lr warmup <<< "$(settings_of "$variant")"
    # FILTER + self-teaching: the FILTER row's run of this seed first, as its teacher
    [[ $variant != filter-st ]] || locked "$WORK/runs/filter.seed$seed" \
        finetune filter "$seed" "$batch" "$lr" "$warmup" "$WORK/runs/filter.seed$seed"
    locked "$WORK/runs/$variant.seed$seed" \
        finetune "$variant" "$seed" "$batch" "$lr" "$warmup" "$WORK/runs/$variant.seed$seed"
    scores=$WORK/scores/$variant.seed$seed.json
    if [[ -f $scores ]]; then log "$scores is there"; return 0; fi
    predict_and_score "$WORK/runs/$variant.seed$seed/checkpoint_best.pt" "$EVAL_SPLIT" \
        "${VARIANT_ROW[$variant]} seed $seed" "$scores" "$(data_of "$variant")" >&2
}

table() {  # the table of every cell's scores: mean ± std over the seeds, with each row's command
    local variant seed first=${SEEDS%% *} rows=() notes=() missing=()
    for variant in $VARIANTS; do
        rows+=(--row "${VARIANT_ROW[$variant]}")
        for seed in $SEEDS; do
            [[ -f $WORK/scores/$variant.seed$seed.json ]] || missing+=("$variant seed $seed")
            rows+=("$WORK/scores/$variant.seed$seed.json")
        done
        [[ ! -f $WORK/runs/$variant.seed$first.command ]] || notes+=(--note "${VARIANT_ROW[$variant]} (seed $first; each seed its own --seed and --save-dir): $(cat "$WORK/runs/$variant.seed$first.command")")
    done
    if (( ${#missing[@]} )); then
        echo "table: ${#missing[@]} cells not finished (${missing[*]}); their logs: $WORK/runs/" >&2
        return 1
    fi
    log "table: mean ± std over seeds ($SEEDS) -> $WORK/table.md"
    step "grafusion-results" "$WORK/table.log" \
        "$PYTHON" -m fairseq_grafusion.cli.results "${rows[@]}" --languages $LANGS \
        ${NO_PARSER:+--no-parser $NO_PARSER} "${notes[@]}" --output "$WORK/table.md" --json "$WORK/table.json"
    cat "$WORK/table.md"
}

run_protocol() {  # every variant x seed in this process, then the table
    local variant i n
    prepare
    if [[ $GRID == 1 ]]; then  # appendix C's grid on the dev split, per row with its own settings
        for variant in $VARIANTS; do
            [[ $variant == filter-st || $variant == filter-published ]] || CHOSEN[$variant]=$(best_of_grid "$variant")
        done
    fi
    n=$(cells | wc -l)
    for (( i = 0; i < n; i++ )); do run_cell "$i"; done
    table
}

nth_lang() {  # nth_lang I: the language at (0-based) position I of LANGS
    local langs
    read -r -a langs <<< "$LANGS"
    if [[ ! $1 =~ ^[0-9]+$ ]] || (( $1 >= ${#langs[@]} )); then
        echo "task '$1': LANGS has ${#langs[@]} languages ($LANGS)" >&2; return 2
    fi
    echo "${langs[$1]}"
}

sharded_step() {  # sharded_step align-model|shard|merge TASK: the pairs preprocessed by job arrays,
    # SHARDS shards per pair.  align-model (a task per language of LANGS) estimates the pair's
    # alignment model once; shard (a task per language x shard: TASK = language index x SHARDS +
    # shard) preprocesses one shard, applying that model (--align-apply lexical: the shards then
    # give exactly one run's data); merge (a task per language) joins the shards.  STEP=prepare
    # then finds every pair done and combines them.
    local kind=$1 task=$2 lang out shards=${SHARDS:?SHARDS: the number of shards per language pair}
    if [[ $kind == shard ]]; then lang=$(nth_lang $(( task / shards ))); else lang=$(nth_lang "$task"); fi
    out=$(pair_dir "$lang")
    mkdir -p "$out"
    pair_args "$lang"
    case $kind in
        align-model)
            step "grafusion-preprocess align-model en-$lang" "$out.align-model.log" \
                "$PYTHON" -m fairseq_grafusion.preprocess align-model "${PAIR_ARGS[@]}" ;;
        shard)
            step "grafusion-preprocess en-$lang shard $(( task % shards ))/$shards" "$out.shard$(( task % shards )).log" \
                "$PYTHON" -m fairseq_grafusion.preprocess all "${PAIR_ARGS[@]}" --align-apply lexical \
                --align-priors "$out/work/alignment.priors" --num-shards "$shards" --shard-id $(( task % shards )) ;;
        merge)
            step "grafusion-preprocess merge en-$lang" "$out.merge.log" \
                "$PYTHON" -m fairseq_grafusion.preprocess merge "${PAIR_ARGS[@]}" --num-shards "$shards" ;;
    esac
}

run_step() {  # the recipe's entry: STEP=all (default) runs everything here; a job array runs
    # STEP=prepare once, then STEP=cell per task (CELL, default $SLURM_ARRAY_TASK_ID), then
    # STEP=table; STEP=cells prints the number of cells (the array's size)
    set_defaults
    case ${STEP:-all} in
        all) run_protocol ;;
        prepare) prepare ;;
        cells) echo $(( $(cells | wc -l) )) ;;
        cell)
            [[ $GRID != 1 ]] || { echo "STEP=cell: GRID=1's search runs in one process (STEP=all); give the array BATCH, LR and WARMUP" >&2; return 2; }
            run_cell "${CELL:-${SLURM_ARRAY_TASK_ID:?STEP=cell needs CELL or SLURM_ARRAY_TASK_ID}}" ;;
        table) table ;;
        align-model|shard|merge)
            sharded_step "$STEP" "${CELL:-${SLURM_ARRAY_TASK_ID:?STEP=$STEP needs CELL or SLURM_ARRAY_TASK_ID}}" ;;
        *) echo "STEP=$STEP: one of all, prepare, cells, cell, table, align-model, shard, merge" >&2; return 2 ;;
    esac
}

# MINI=1: the bundled XQuAD sample ($S) as a recipe's data (XQuAD's English original stands in for
# the English machine translation) and the CPU miniature's settings; VARIANTS and WARMUP, set by
# the recipe, are kept.
sample_inputs() {
    TRAIN_SRC=$S/qa/train.en.json
    TRAIN_TGT="$S/qa/train.{lang}.json"
    DEV_SRC=$S/qa/valid.en.json; DEV_TGT="$S/qa/valid.{lang}.json"
    SPM=$S/spm-xquad/sentencepiece.bpe.model; DICT=$S/spm-xquad/dict.txt
    ALIGN_EXTRA="$S/parallel/train.en-{lang}.en $S/parallel/train.en-{lang}.{lang}"
    PARALLEL=$ALIGN_EXTRA
    ARCH=${ARCH:-grafusion_tiny}; SEEDS=${SEEDS:-"1 2"}
    BATCH=${BATCH:-8}; LR=${LR:-1e-3}; EPOCHS=${EPOCHS:-4}
    PRETRAIN_UPDATES=${PRETRAIN_UPDATES:-100}; PRETRAIN_BATCH=8; PRETRAIN_LR=1e-3
    TRAIN_EXTRA="--cpu ${TRAIN_EXTRA:-}"
    PREDICT_EXTRA="--cpu"
}
