# Shell functions shared by the benchmark scripts (scripts/bench-store, scripts/bench-gateway).
# Source it after setting `program` (the name in messages), `quiet_busy_percent` and
# `quiet_wait_max_s`.

# The benchmarks read no metrics, and the default metrics ports would clash
# with services already running on this machine.
export HELVINO_STORE_METRICS_LISTEN=off HELVINO_GATEWAY_METRICS_LISTEN=off HELVINO_REALTIME_METRICS_LISTEN=off

die() {
    echo "$program: $*" >&2
    exit 1
}

# Waits until the machine's CPUs are less than quiet_busy_percent busy over one second, for at most
# quiet_wait_max_s seconds, because other work on a shared machine distorts a point. Between points
# the servers and PostgreSQL are idle, so the load seen here is someone else's.
wait_for_quiet_machine() {
    local waited=0 before busy
    while :; do
        before=$(machine_cpu_ticks)
        sleep 1
        busy=$(machine_cpu_percent "$before" "$(machine_cpu_ticks)")
        busy=${busy% *}
        if [[ $busy != "?" ]] && ((busy < quiet_busy_percent)); then
            break
        fi
        waited=$((waited + 1))
        if ((waited >= quiet_wait_max_s)); then
            echo "$program: the machine is still ${busy}% busy after ${waited}s; measuring anyway" >&2
            break
        fi
    done
    if ((waited > 0)); then
        echo "waited ${waited}s for other work on the machine to finish"
    fi
}

# Prints the machine's CPU time in clock ticks since boot as "busy idle steal", from the first line
# of /proc/stat; iowait counts as idle.
machine_cpu_ticks() {
    local user nice system idle iowait irq softirq steal
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    echo "$((user + nice + system + irq + softirq)) $((idle + iowait)) $steal"
}

# Prints "busy% steal%" of all CPUs between two machine_cpu_ticks readings.
machine_cpu_percent() {
    local busy0 idle0 steal0 busy1 idle1 steal1
    read -r busy0 idle0 steal0 <<<"$1"
    read -r busy1 idle1 steal1 <<<"$2"
    local busy=$((busy1 - busy0)) idle=$((idle1 - idle0)) steal=$((steal1 - steal0))
    local total=$((busy + idle + steal))
    if ((total == 0)); then
        echo "? ?"
        return
    fi
    echo "$((100 * busy / total)) $((100 * steal / total))"
}

# Prints the user plus system CPU time of a process in clock ticks, from /proc/PID/stat, or 0 when
# the process is gone. The command name in field 2 may contain spaces, so the fields are counted
# after its closing bracket.
process_cpu_ticks() {
    local stat
    stat=$(cat /proc/"$1"/stat 2>/dev/null) || {
        echo 0
        return
    }
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $stat
    echo "$((${12} + ${13}))"
}

clock_ticks_per_second=$(getconf CLK_TCK)
