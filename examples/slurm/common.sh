# Shared by the sbatch scripts of examples/slurm (sourced, not run).  Each script is both the
# submitter (run with bash on a login node: it submits its jobs with sbatch, their dependencies
# chained) and the job (run by SLURM: it runs the step named by STEP).  SLURM runs a spooled copy
# of a batch script, so the jobs find the repository through GRAFUSION_REPO, set here at
# submission and exported to them (sbatch's default --export=ALL).
export GRAFUSION_REPO=$REPO
export PYTHON=${PYTHON:-python}
LOGS=${LOGS:-slurm-logs}   # the jobs' output: LOGS/NAME-JOBID_TASK.out (relative to the submitting directory)

in_job() { [[ -n ${SLURM_JOB_ID:-} ]]; }

submit() {  # submit STEP SBATCH_OPTIONS...: SCRIPT as a job running STEP; prints its job id
    local step=$1
    shift
    mkdir -p "$LOGS"
    sbatch --parsable --job-name "grafusion-$step" --output "$LOGS/%x-%A_%a.out" "$@" \
        --export "ALL,STEP=$step" "$SCRIPT"
}

after() {  # after JOBID...: the dependency option on the jobs given (none when there are none)
    local ids
    ids=$(IFS=:; echo "$*")
    [[ -z $ids ]] || echo "--dependency=afterok:$ids"
}

requeue_on_notice() {  # requeue_on_notice COMMAND...: COMMAND, and if SLURM sends USR1 (#SBATCH
    # --signal=B:USR1@SECONDS, before the time limit) the job goes back into the queue; its next
    # start resumes from the last checkpoint (fairseq-train reads checkpoint_last.pt)
    trap 'echo "time limit near: requeueing job $SLURM_JOB_ID" >&2; scontrol requeue "$SLURM_JOB_ID"' USR1
    "$@" &
    local pid=$! status
    while true; do  # wait returns early when the trap runs: wait again while COMMAND lives
        wait "$pid" && return 0
        status=$?
        kill -0 "$pid" 2>/dev/null || return "$status"
    done
}
