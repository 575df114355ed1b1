# Shell helpers of the example scripts (the sample's run.sh, the recipes' recipe_lib.sh): each
# step keeps its command's whole output in a log file and stops the script at the first failure,
# naming the step, the command's own error line and the log.  Sourced, not run.

step() {  # step NAME LOG COMMAND [ARG...]: run COMMAND, its stdout and stderr into LOG
    local name=$1 log=$2 status=0
    shift 2
    mkdir -p "$(dirname "$log")"
    "$@" > "$log" 2>&1 || status=$?
    (( status == 0 )) && return 0
    step_failed "$name" "$log" "$status"
}

step_failed() {  # step_failed NAME LOG STATUS: the one report of a failed step, then exit STATUS
    local name=$1 log=$2 status=$3 line
    # the command's own one-line error (PROG: error: ...), else the last line it printed
    line=$(grep -m 1 -E '(^|: )error: ' "$log" || tail -n 1 "$log")
    echo "${0##*/}: step '$name' failed (exit status $status): ${line:-no output}" >&2
    echo "${0##*/}: its whole output is in $log" >&2
    exit "$status"
}
