# CPU measurement for the benchmark scripts (bench.sh, ladder.sh); sourced, not run. Each
# script defines `step` (its progress line) before sourcing this.

# All processes of a process group (wrangler's node and its workerd), comma-separated.
group_pids() { pgrep -g "$1" | paste -sd, -; }

# CPU ticks used so far by a set of processes (comma-separated pids).
cpu_ticks() { local total=0 pid; for pid in ${1//,/ }; do
    [ -r "/proc/$pid/stat" ] && total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done; echo "$total"; }

# Waits (up to 4 minutes) until the processes that the command `$1` lists use no CPU, so one
# run's leftovers (a backlog an overloaded scenario left) do not land in the next one's figures.
wait_until_idle() {
    local list="$1" waited=0 pids before
    for _ in $(seq 1 240); do
        pids="$($list)"
        before=$(cpu_ticks "$pids"); sleep 1; waited=$((waited + 1))
        [ $(( $(cpu_ticks "$pids") - before )) -le 5 ] && break
    done
    [ "$waited" -gt 1 ] && step "waited ${waited} s for the servers to go idle"
    return 0
}
