#!/usr/bin/env bash
# The benchmark command (not part of the test command):
#
#     sudo bash test/bench/run.sh [throughput|scale|memory|all]   (default: throughput)
#
# Runs as root (or via sudo): installs missing Debian packages, builds and
# installs the extension from the working tree, then does every database step
# as the unprivileged user "postgres" against a throwaway cluster in a
# temporary directory (default durability: fsync = on, synchronous_commit =
# on, full_page_writes = on; shared_preload_libraries = agentmesh_lifecycle so
# the maintenance worker runs at its default naptime when it exists).
#
#   throughput  five pgbench workloads (+ two design probes), extension vs a
#               plain-SQL baseline on identical data, interleaved in short
#               back-to-back pairs (ext, base, base, ext, ...), and ONE table:
#               workload | ext tps | base tps | ratio | pairs | target | met
#               (~30 minutes at the defaults).
#   scale       lm_run_maintenance() at 100 000 and 1 000 000 agents with the
#               same number of silent agents; table/index growth, HOT % and
#               audit growth over a compressed "day" of heartbeats; memory of
#               the worker (or of a backend calling lm_run_maintenance()
#               repeatedly, when there is no worker) after 10 and 1000 passes.
#   memory      only the worker memory check, on a small fleet (MEM_AGENTS)
#               in which every pass writes (missed heartbeats, rotations,
#               seals), so that 1000 passes at naptime 1 s take ~17 minutes:
#               RSS after 10, 100, 250, 500 and PASSES passes.
#   all         throughput and scale.
#
# Environment (defaults in brackets):
#   QUICK=1            small sizes for harness work: 10 000 agents, 5 s runs,
#                      scale 10 000 / 100 000 agents, 1 min "day"
#   AGENTS=N           agents for the throughput workloads      [100000]
#   DURATION=S         seconds per pgbench run                  [10]
#   ROUNDS=R           ext/base pairs per workload (median)     [9]
#   WARMUP=S           unmeasured warm-up run of each side      [10]
#   BENCH_PROFILE=1    also profile one run of each script with perf and
#                      write CPU microseconds per transaction by function
#                      to profile_*.txt in the raw output directory
#   CLIENTS=C          pgbench clients (= threads)              [4]
#   WORKLOADS="1 1r 1a 2 2a 3 3a 4 5 6 7"  subset of the throughput workloads;
#                      1r is workload 1 returning the whole agent row (no
#                      target); 1a, 2a and 3a are workloads 1, 2 and 3 run by
#                      ordinary logins instead of the superuser (1a by a
#                      member of agentmesh_admin, 2a and 3a by a member of
#                      agentmesh_agent), both sides as the same login;
#                      6 and 7 are design probes in plain SQL (no target): a
#                      no-op C BEFORE UPDATE trigger, and a narrow heartbeat
#                      table with an index on last_heartbeat
#   SCALE_SMALL=N SCALE_LARGE=N SILENT=N   [100000 1000000 10000]
#   DAY_MINUTES=M      length of the compressed heartbeat day   [5]
#   PASSES=N           passes for the memory measurement        [1000]
#   SCALE_PARTS="passes memory"  "passes" alone skips the worker memory
#                      measurement and the heartbeat day; "passes day" runs
#                      the heartbeat day without the memory measurement
#   MEM_AGENTS=N       fleet of the memory mode                 [2000]
#   MEM_RATE=R         heartbeats/s during the memory mode      [50]
#   MEM_IDLE=1         memory mode on an idle fleet instead (one burst of
#                      missed heartbeats after 5 minutes: shows the one-time
#                      growth of the first write pass)
#   LOAD_JOBS=J        parallel loader sessions                 [2]
#   PG=N               PostgreSQL major version, 15 or 18       [15]
#   PORT=P             port of the throwaway cluster            [55439]
#   SKIP_BUILD=1       use the extension already installed
#   KEEP=1             keep the cluster directory (path printed)
#   RESULTS=DIR        where the summary tables go  [test/bench/results]
#   BENCH_OUT=DIR      where the raw outputs go (every pgbench run, profile,
#                      pass timing, memory sample)  [a new directory from
#                      mktemp -d under ${TMPDIR:-/tmp}, outside the
#                      repository; its path is printed at start and end]
set -euo pipefail
# PGXS appends $(PROFILE) to CFLAGS: never let a stray one into the build
unset PROFILE

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/common.sh
source "${BENCH_DIR}/../../scripts/common.sh"

MODE="${1:-throughput}"
case "${MODE}" in
    throughput|scale|memory|all) ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown mode: ${MODE} (throughput, scale or all)" ;;
esac

if [[ ${QUICK:-0} == 1 ]]; then
    : "${AGENTS:=10000}" "${DURATION:=5}" "${SCALE_SMALL:=10000}" "${SCALE_LARGE:=100000}"
    : "${SILENT:=1000}" "${DAY_MINUTES:=1}" "${PASSES:=200}" "${ROUNDS:=3}" "${WARMUP:=2}"
fi
AGENTS="${AGENTS:-100000}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-9}"
WARMUP="${WARMUP:-10}"
CLIENTS="${CLIENTS:-4}"
WORKLOADS="${WORKLOADS:-1 1r 1a 2 2a 3 3a 4 5 6 7}"
SCALE_SMALL="${SCALE_SMALL:-100000}"
SCALE_LARGE="${SCALE_LARGE:-1000000}"
SILENT="${SILENT:-10000}"
DAY_MINUTES="${DAY_MINUTES:-5}"
PASSES="${PASSES:-1000}"
SCALE_PARTS="${SCALE_PARTS:-passes memory}"
MEM_AGENTS="${MEM_AGENTS:-2000}"
MEM_RATE="${MEM_RATE:-50}"
LOAD_JOBS="${LOAD_JOBS:-2}"
BATCH=50000
RESULTS="${RESULTS:-${BENCH_DIR}/results}"
PORT="${PORT:-55439}"

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "${RESULTS}"
# raw outputs stay outside the repository unless BENCH_OUT says otherwise
if [[ -n ${BENCH_OUT:-} ]]; then
    RAW="${BENCH_OUT}"
    mkdir -p "${RAW}"
else
    RAW="$(mktemp -d "${TMPDIR:-/tmp}/agentmesh-bench-out.XXXXXX")"
    chmod 0755 "${RAW}"
fi
log "raw outputs go to ${RAW}"
SUMMARY="${RESULTS}/${MODE}-summary.txt"

W=""
cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n ${W} && -d ${W}/data ]]; then
        as_pg pg_ctl -D "${W}/data" -m fast stop >/dev/null 2>&1 || true
    fi
    if [[ -n ${W} ]]; then
        if [[ ${KEEP:-0} == 1 ]]; then echo "(cluster directory kept: ${W})"; else rm -rf "${W}"; fi
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -------------------------------------------------------------------

ensure_packages
select_pg "${PG:-15}"
W="$(make_workdir agentmesh-bench)"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    stage_source "${W}/src"
    build_and_install "${W}/src" >"${W}/build.log" 2>&1 || { tail -n 40 "${W}/build.log"; die "build failed"; }
    log "built and installed the extension from ${REPO_ROOT}"
fi

psql_() { as_pg psql -h "${W}" -p "${PORT}" -d bench -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { psql_ -At -c "$1"; }

log "initdb in ${W}/data"
as_pg initdb -D "${W}/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"${W}/initdb.log"
cat <<EOF | as_pg tee -a "${W}/data/postgresql.conf" >/dev/null
# --- benchmark settings (durability left at its defaults) ---
listen_addresses = ''
port = ${PORT}
unix_socket_directories = '${W}'
shared_preload_libraries = 'agentmesh_lifecycle'
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
max_connections = 50
logging_collector = off
log_min_messages = warning
EOF
as_pg pg_ctl -D "${W}/data" -l "${W}/server.log" -w start >/dev/null
as_pg createdb -h "${W}" -p "${PORT}" bench
q "CREATE EXTENSION agentmesh_lifecycle"
q "CREATE SCHEMA bench"
q "CREATE TABLE bench.map (i int PRIMARY KEY, agent_id text NOT NULL, token text NOT NULL)"

PGVER="$(q 'SHOW server_version')"
CODE="$(git -c safe.directory='*' -C "${REPO_ROOT}" describe --always --dirty 2>/dev/null || echo unknown)"
[[ ${SKIP_BUILD:-0} == 1 ]] && CODE="installed library (SKIP_BUILD=1; working tree is ${CODE})"
NPROC="$(nproc)"
MEM="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
CPU="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"

worker_pids() {
    # any background worker of ours (launcher or per-database worker)
    q "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
        WHERE backend_type ILIKE '%agentmesh%' OR application_name ILIKE '%agentmesh%'"
}

# load_agents FROM TO: agents FROM..TO through lm_request/approve/activate,
# in transactions of ${BATCH}, ${LOAD_JOBS} sessions in parallel.
load_agents() {
    local from="$1" to="$2" lo hi running=0
    for ((lo = from; lo <= to; lo += BATCH)); do
        hi=$((lo + BATCH - 1)); ((hi > to)) && hi=${to}
        psql_ -v lo="${lo}" -v hi="${hi}" -f "${BENCH_DIR}/load.sql" &
        running=$((running + 1))
        if ((running >= LOAD_JOBS)); then wait -n; running=$((running - 1)); fi
    done
    wait
}

# pgbench_run NAME SCRIPT: one fixed-duration run; prints tps
pgbench_run() {
    local name="$1" script="$2" out
    out="${RAW}/${name}.txt"
    q "CHECKPOINT" >/dev/null
    as_pg pgbench -h "${W}" -p "${PORT}" -U "${BENCH_USER:-postgres}" -n -M prepared -c "${CLIENTS}" -j "${CLIENTS}" \
        -T "${DURATION}" -D n="${AGENTS}" -f "${BENCH_DIR}/workloads/${script}" bench >"${out}" 2>&1 \
        || { tail -n 20 "${out}" >&2; die "pgbench ${script} failed (see ${out})"; }
    awk '/^tps = / {print $3; exit}' "${out}"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

# profile_run NAME SCRIPT: one run with perf recording the pgbench backends;
# writes CPU microseconds per transaction, inclusive, by function
profile_run() {
    local name="$1" script="$2" pids out="${RAW}/profile_${1}"
    command -v perf >/dev/null || { log "perf not installed: no profile"; return 0; }
    as_pg pgbench -h "${W}" -p "${PORT}" -U "${BENCH_USER:-postgres}" -n -M prepared -c "${CLIENTS}" -j "${CLIENTS}" \
        -T $((DURATION + 4)) -D n="${AGENTS}" -f "${BENCH_DIR}/workloads/${script}" bench >"${out}.pgbench" 2>&1 &
    local pg=$!
    sleep 2
    pids=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
    perf record -F 2000 -g -p "${pids}" -o "${W}/${name}.perf" -- sleep "${DURATION}" >/dev/null 2>&1 || true
    wait "${pg}" || { log "  profile ${name}: pgbench failed (see ${out}.pgbench)"; return 0; }
    local tps; tps=$(awk '/^tps = / {print $3; exit}' "${out}.pgbench")
    python3 "${BENCH_DIR}/perf_cost.py" "${W}/${name}.perf" "${tps}" "${DURATION}" >"${out}.txt" 2>&1 || true
    log "  profile ${name}: ${tps} tps -> ${out}.txt"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# --- throughput ------------------------------------------------------------------

throughput() {
    local t0 t1 w ext base r e b ratio target met
    local -A name target_of
    name[1]="lm_heartbeat(id) vs UPDATE by PK"
    name[1r]="lm_heartbeat(id), whole row in FROM, vs UPDATE"
    name[1a]="(1) by an agentmesh_admin login, not superuser"
    name[2]="lm_heartbeat(id, token) vs UPDATE + SELECT sha256"
    name[2a]="(2) by an agentmesh_agent login, not superuser"
    name[3a]="(3) by an agentmesh_agent login, not superuser"
    name[3]="lm_verify_credential vs SELECT sha256"
    name[4]="request+approve+activate vs plain SQL"
    name[5]="lm_rotate_credentials vs plain SQL"
    name[6]="probe: UPDATE + no-op C BEFORE trigger vs UPDATE"
    name[7]="probe: narrow liveness table, indexed vs UPDATE"
    local -A user_of=([1a]=bench_admin [2a]=bench_agent [3a]=bench_agent)
    target_of=([1]=0.85 [1r]=- [1a]=0.85 [2]=0.80 [2a]=0.80 [3]=0.85 [3a]=0.85 [4]=0.60 [5]=0.60 [6]=- [7]=-)
    local -A file=([1]=w1_heartbeat [1r]=w1r_heartbeat_row [1a]=w1_heartbeat
                   [2]=w2_heartbeat_token [2a]=w2_heartbeat_token [3]=w3_verify [3a]=w3_verify [4]=w4_onboard [5]=w5_rotate
                   [6]=w6_trigger_probe [7]=w7_liveness_probe)

    log "throughput: loading ${AGENTS} active agents through lm_request/lm_approve/lm_activate"
    t0=$(date +%s.%N)
    load_agents 1 "${AGENTS}"
    t1=$(date +%s.%N)
    LOAD_SECS=$(elapsed "${t0}" "${t1}")
    log "loaded in ${LOAD_SECS} s; building the baseline copies"
    psql_ -f "${BENCH_DIR}/setup.sql" >/dev/null
    # the ordinary logins of workloads 1a, 2a and 3a: what a real deployment
    # runs as (the superuser skips role checks and row-level security)
    q "CREATE ROLE bench_admin LOGIN IN ROLE agentmesh_admin" >/dev/null
    q "CREATE ROLE bench_agent LOGIN IN ROLE agentmesh_agent" >/dev/null
    q "GRANT USAGE ON SCHEMA bench TO bench_admin, bench_agent;
       GRANT SELECT ON bench.map, bench.credentials_plain TO bench_admin, bench_agent;
       GRANT SELECT, UPDATE ON bench.agents_plain TO bench_admin, bench_agent" >/dev/null

    local worker; worker="$(worker_pids)"
    ROWS=()
    for w in ${WORKLOADS}; do
        export BENCH_USER="${user_of[$w]:-postgres}"
        if [[ ${w} == 2 || ${w} == 2a ]]; then
            q "UPDATE agentmesh.policies SET heartbeat_requires_token = true WHERE name = 'default'"
        else
            q "UPDATE agentmesh.policies SET heartbeat_requires_token = false WHERE name = 'default'"
        fi
        ext=""; base=""
        if ((WARMUP > 0)); then
            # unmeasured: first touches after the setup's rewrite and checkpoint
            # (full-page writes, cold caches) would otherwise land in round 1
            DURATION=${WARMUP} pgbench_run "w${w}_ext_warmup" "${file[$w]}_ext.sql" >/dev/null
            DURATION=${WARMUP} pgbench_run "w${w}_base_warmup" "${file[$w]}_base.sql" >/dev/null
        fi
        local ratios=""
        for ((r = 1; r <= ROUNDS; r++)); do
            # alternate the order within each pair so that drift cancels
            if ((r % 2)); then
                e=$(pgbench_run "w${w}_ext_r${r}" "${file[$w]}_ext.sql")
                b=$(pgbench_run "w${w}_base_r${r}" "${file[$w]}_base.sql")
            else
                b=$(pgbench_run "w${w}_base_r${r}" "${file[$w]}_base.sql")
                e=$(pgbench_run "w${w}_ext_r${r}" "${file[$w]}_ext.sql")
            fi
            ratios+=" $(awk -v e="${e}" -v b="${b}" 'BEGIN {printf "%.3f", e / b}')"
            log "  (${w}) pair ${r}: ext ${e%.*} tps, base ${b%.*} tps"
            ext+=" ${e}"; base+=" ${b}"
        done
        e=$(echo "${ext}" | median); b=$(echo "${base}" | median)
        # the ratio is the median of the per-pair ratios: each pair ran back
        # to back, so it is the comparison least disturbed by other load
        local ratio_raw; ratio_raw=$(echo "${ratios}" | median)
        ratio=$(awk -v r="${ratio_raw}" 'BEGIN {printf "%.2f", r}')
        local spread; spread=$(echo "${ratios}" | tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}')
        target=${target_of[$w]}
        # judged on the unrounded median: 0.849 does not meet 0.85
        met=$(awk -v r="${ratio_raw}" -v t="${target}" 'BEGIN {print (t == "-") ? "-" : (r >= t) ? "yes" : "NO"}')
        ROWS+=("$(printf '| %-54s | %10.0f | %10.0f | %5s | %-9s | >= %-4s | %-3s |' \
            "(${w}) ${name[$w]}" "${e}" "${b}" "${ratio}" "${spread}" "${target}" "${met}")")
        if [[ ${BENCH_PROFILE:-0} == 1 ]]; then
            profile_run "w${w}_ext" "${file[$w]}_ext.sql"
            profile_run "w${w}_base" "${file[$w]}_base.sql"
        fi
        ROWS_RAW+=("w${w} ext=[${ext# }] base=[${base# }]")
    done
    export BENCH_USER=postgres
    q "UPDATE agentmesh.policies SET heartbeat_requires_token = false WHERE name = 'default'"
    # the driver's own lookup (bench.map by integer), paid equally by both sides
    local lk
    printf '\\set i random(1, :n)\nSELECT m.agent_id, m.token FROM bench.map m WHERE m.i = :i;\n' \
        | as_pg tee "${W}/lookup.sql" >/dev/null
    q "CHECKPOINT" >/dev/null
    as_pg pgbench -h "${W}" -p "${PORT}" -n -M prepared -c "${CLIENTS}" -j "${CLIENTS}" \
        -T "${DURATION}" -D n="${AGENTS}" -f "${W}/lookup.sql" bench >"${RAW}/lookup_only.txt" 2>&1
    lk=$(awk '/^tps = / {print $3; exit}' "${RAW}/lookup_only.txt")

    {
        echo "agentmesh_lifecycle benchmark (throughput) - $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "machine: nproc=${NPROC}, memory ${MEM}, CPU ${CPU}; extension built from ${CODE}"
        echo "PostgreSQL ${PGVER}; fsync=$(q 'SHOW fsync'), synchronous_commit=$(q 'SHOW synchronous_commit'), shared_buffers=$(q 'SHOW shared_buffers')"
        echo "agents=${AGENTS}, clients=${CLIENTS}, -M prepared, ${DURATION} s per run, ${ROUNDS} back-to-back ext/base pairs per workload (order alternating) after a ${WARMUP} s warm-up of each"
        echo "tps = median over the pairs; ratio = median of the per-pair ratios ext/base; pairs = range of the per-pair ratios"
        echo "worker: ${worker:-not running (no agentmesh background worker in pg_stat_activity)}"
        echo "load: ${AGENTS} agents via lm_request+lm_approve+lm_activate in ${LOAD_SECS} s ($(awk -v n="${AGENTS}" -v s="${LOAD_SECS}" 'BEGIN {printf "%.0f", n / s}') agents/s, ${LOAD_JOBS} sessions)"
        echo
        printf '| %-54s | %10s | %10s | %5s | %-9s | %-7s | %-3s |\n' workload "ext tps" "base tps" ratio "pairs" target met
        printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..56})" "$(printf -- '-%.0s' {1..12})" \
            "$(printf -- '-%.0s' {1..12})" "-------" "-----------" "---------" "-----"
        printf '%s\n' "${ROWS[@]}"
        echo
        echo "driver lookup alone (SELECT from bench.map by integer, in every script of both sides): ${lk} tps"
        echo "raw tps per run: ${ROWS_RAW[*]}"
        echo "worker during the run: $(q "SELECT format('passes=%s last_pass_duration=%s orphaned=%s heartbeats_missed=%s rotated=%s seals=%s errors=%s', passes, last_pass_duration, orphaned, heartbeats_missed, rotated, seals, errors) FROM agentmesh.worker_status WHERE datname = current_database()")"
    } | tee "${RESULTS}/throughput-summary.txt"
}

# --- scale ---------------------------------------------------------------------

# time_pass LABEL: one lm_run_maintenance() pass, timed; prints seconds
time_pass() {
    local label="$1" out="${RAW}/maintenance_${1}.txt"
    psql_ -c "\\timing on" -c "SELECT * FROM agentmesh.lm_run_maintenance()" >"${out}" 2>&1 \
        || { cat "${out}" >&2; die "lm_run_maintenance() failed"; }
    awk '/^Time: / {printf "%.3f\n", $2 / 1000}' "${out}" | tail -n 1
}

# make_silent N: every active agent heartbeats now, except N of them, which
# went silent two days ago (beyond the 24 h orphan threshold).  Plain SQL on
# the liveness columns: the agents trigger allows it and writes no event.
make_silent() {
    local n="$1"
    q "UPDATE agentmesh.agents SET last_heartbeat = now() WHERE state = 'active'" >/dev/null
    q "UPDATE agentmesh.agents SET last_heartbeat = now() - interval '2 days'
        WHERE agent_id IN (SELECT agent_id FROM agentmesh.agents WHERE state = 'active'
                            ORDER BY md5(agent_id) LIMIT ${n})" >/dev/null
    q "VACUUM (ANALYZE) agentmesh.agents" >/dev/null
}

sizes() {
    q "SELECT string_agg(format('%s=%s', c.relname, pg_size_pretty(pg_relation_size(c.oid))), ', ' ORDER BY c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'agentmesh' AND c.relkind IN ('r', 'i')
          AND c.relname ~ '^(agents|audit_events|credentials)'"
}

# VmRSS counts the shared buffers a process has touched; RssAnon is its
# private memory (where a leak would show).  Printed as "VmRSS/RssAnon/RssShmem".
rss_of() { as_pg awk '/^VmRSS/ {v = $2} /^RssAnon/ {a = $2} /^RssShmem/ {s = $2} END {print v "/" a "/" s}' "/proc/$1/status"; }
rss_pct() { awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, "/"); split(b, y, "/"); printf "VmRSS %+.1f%%, RssAnon %+.1f%%", (x[1] - y[1]) * 100 / y[1], (x[2] - y[2]) * 100 / y[2]}'; }

scale() {
    local t0 t1 load_small load_large p_small p_large worker out
    out="${RESULTS}/scale-summary.txt"
    : >"${out}"
    say() { echo "$*" | tee -a "${out}"; }
    q "ALTER SYSTEM SET agentmesh_lifecycle.enabled = off" >/dev/null
    q "SELECT pg_reload_conf()" >/dev/null
    say "agentmesh_lifecycle benchmark (scale) - $(date -u '+%Y-%m-%d %H:%M UTC')"
    say "machine: nproc=${NPROC}, memory ${MEM}, CPU ${CPU}; PostgreSQL ${PGVER}; extension: ${CODE}"
    say "worker: ${worker:-$(worker_pids)}"
    say "(agentmesh_lifecycle.enabled = off while passes are timed: the passes are called explicitly)"

    local have
    have="$(q "SELECT count(*) FROM agentmesh.agents")"
    log "scale: loading agents up to ${SCALE_SMALL}"
    t0=$(date +%s.%N); load_agents $((have + 1)) "${SCALE_SMALL}"; t1=$(date +%s.%N)
    load_small=$(elapsed "${t0}" "${t1}")
    say "load: $((SCALE_SMALL - have)) agents via lm_request+lm_approve+lm_activate in ${load_small} s"
    local start_sizes; start_sizes="$(sizes)"
    # an untimed pass first: it seals the load's audit events (a seal hashes
    # every event since the previous one), which is the load's work, not the
    # pass's; the timed pass then does the silent agents' work plus its scan
    say "  settle pass (untimed work of the load, seals its events): $(time_pass settle_small) s"
    make_silent "${SILENT}"
    p_small=$(time_pass "small")
    say "maintenance pass at ${SCALE_SMALL} agents, ${SILENT} silent: ${p_small} s"
    say "  orphaned after pass: $(q "SELECT count(*) FROM agentmesh.agents WHERE state = 'orphaned'")"
    p_small2=$(time_pass "small_idle")
    say "  second pass (nothing to do) at ${SCALE_SMALL}: ${p_small2} s"

    # --- memory (worker at naptime 1 s) overlapping a compressed day of
    # heartbeats on the first SCALE_SMALL agents ---
    if [[ ${SCALE_PARTS} == *memory* ]]; then
        memory_and_day "${start_sizes}"
    elif [[ ${SCALE_PARTS} == *day* ]]; then
        heartbeat_day "${start_sizes}"
    else
        say "(memory and heartbeat day skipped: SCALE_PARTS=${SCALE_PARTS})"
    fi

    # --- 1 M ---
    log "scale: loading agents up to ${SCALE_LARGE}"
    t0=$(date +%s.%N); load_agents $((SCALE_SMALL + 1)) "${SCALE_LARGE}"; t1=$(date +%s.%N)
    load_large=$(elapsed "${t0}" "${t1}")
    say "load: $((SCALE_LARGE - SCALE_SMALL)) more agents in ${load_large} s ($(awk -v n=$((SCALE_LARGE - SCALE_SMALL)) -v s="${load_large}" 'BEGIN {printf "%.0f", n / s}') agents/s)"
    say "  settle pass (untimed work of the load, seals its events): $(time_pass settle_large) s"
    make_silent "${SILENT}"
    p_large=$(time_pass "large")
    say "maintenance pass at ${SCALE_LARGE} agents, ${SILENT} silent: ${p_large} s"
    say "  orphaned after pass: $(q "SELECT count(*) FROM agentmesh.agents WHERE state = 'orphaned'")"
    p_large2=$(time_pass "large_idle")
    say "  second pass (nothing to do) at ${SCALE_LARGE}: ${p_large2} s"
    say "$(awk -v a="${p_large}" -v b="${p_small}" 'BEGIN {printf "pass time ratio %s/%s agents: %.2f (target <= 3)", "'"${SCALE_LARGE}"'", "'"${SCALE_SMALL}"'", a / b}')"
    q "ALTER SYSTEM RESET agentmesh_lifecycle.enabled" >/dev/null
    q "SELECT pg_reload_conf()" >/dev/null
}

wstatus() { q "SELECT $1 FROM agentmesh.worker_status WHERE datname = current_database()"; }

wait_passes() {
    local n="$1" p
    while :; do
        p=$(wstatus passes); p=${p:-0}
        ((p >= n)) && break
        sleep 1
    done
}

memory_and_day() {
    local start_sizes="$1" wp r10 rN p10 pN
    if [[ -n $(wstatus pid) || -n $(worker_pids) ]]; then
        q "ALTER SYSTEM SET agentmesh_lifecycle.naptime = 1" >/dev/null
        q "ALTER SYSTEM SET agentmesh_lifecycle.enabled = on" >/dev/null
        q "SELECT pg_reload_conf()" >/dev/null
        local base; base=$(wstatus passes); base=${base:-0}
        wait_passes $((base + 10))
        wp=$(wstatus pid); p10=$(wstatus passes); r10=$(rss_of "${wp}")
        log "memory: worker ${wp} VmRSS/RssAnon/RssShmem ${r10} kB after ${p10} passes; heartbeat day runs meanwhile"
        heartbeat_day "${start_sizes}"
        log "memory: waiting for ${PASSES} passes (naptime 1 s)"
        wait_passes $((base + PASSES))
        pN=$(wstatus passes); rN=$(rss_of "$(wstatus pid)")
        say "memory: worker pid ${wp} -> $(wstatus pid) (naptime 1 s, fleet ${SCALE_SMALL} agents, heartbeats running for part of it): VmRSS/RssAnon/RssShmem ${r10} kB after ${p10} passes, ${rN} kB after ${pN} passes ($(rss_pct "${rN}" "${r10}"); target within 10%)"
        say "  worker_status: $(q "SELECT format('passes=%s errors=%s last_pass_duration=%s last_error=%s', passes, errors, last_pass_duration, last_error) FROM agentmesh.worker_status WHERE datname = current_database()")"
        q "ALTER SYSTEM RESET agentmesh_lifecycle.naptime" >/dev/null
        q "ALTER SYSTEM SET agentmesh_lifecycle.enabled = off" >/dev/null
        q "SELECT pg_reload_conf()" >/dev/null
    else
        heartbeat_day "${start_sizes}"
        # nearest equivalent: one backend calling lm_run_maintenance() in a loop
        local pidfile="${W}/passes.out" i
        as_pg bash -c "psql -h '${W}' -p ${PORT} -d bench -X -q -At -v ON_ERROR_STOP=1 <<'EOS' >'${pidfile}' 2>&1
\\o /dev/null
$(for ((i = 1; i <= 10; i++)); do echo "SELECT count(*) FROM agentmesh.lm_run_maintenance();"; done)
\\o
SELECT 'rss10 ' || (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\\s+(\\d+)'))[1];
\\o /dev/null
$(for ((i = 11; i <= PASSES; i++)); do echo "SELECT count(*) FROM agentmesh.lm_run_maintenance();"; done)
\\o
SELECT 'rssN ' || (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\\s+(\\d+)'))[1];
EOS"
        r10=$(awk '/^rss10 / {print $2}' "${pidfile}"); rN=$(awk '/^rssN / {print $2}' "${pidfile}")
        cp "${pidfile}" "${RAW}/memory_passes.txt"
        say "memory (no worker present; nearest equivalent: one backend calling lm_run_maintenance() ${PASSES} times, separate transactions): VmRSS ${r10} kB after 10 passes, ${rN} kB after ${PASSES} ($(awk -v a="${rN}" -v b="${r10}" 'BEGIN {printf "%+.1f%%", (a - b) * 100 / b}'))"
    fi
}

heartbeat_day() {
    local start_sizes="$1" a0 a1 hb0 agents_start agents_end m upd hot
    q "SELECT pg_stat_reset()" >/dev/null
    a0=$(q "SELECT count(*) FROM agentmesh.audit_events")
    hb0=$(q "SELECT count(*) FROM agentmesh.audit_events WHERE event_type = 'heartbeat'")
    agents_start=$(q "SELECT pg_table_size('agentmesh.agents')")
    say "day: start sizes: ${start_sizes}"
    say "day: audit_heartbeats = $(q "SELECT audit_heartbeats FROM agentmesh.policies WHERE name = 'default'"), autovacuum = $(q 'SHOW autovacuum')"
    as_pg pgbench -h "${W}" -p "${PORT}" -n -M prepared -c "${CLIENTS}" -j "${CLIENTS}" \
        -T $((DAY_MINUTES * 60)) -P 60 -D n="${SCALE_SMALL}" \
        -f "${BENCH_DIR}/workloads/w1_heartbeat_ext.sql" bench >"${RAW}/day_heartbeats.txt" 2>&1 &
    local pg=$!
    for ((m = 1; m <= DAY_MINUTES; m++)); do
        sleep 60
        echo "minute ${m}: agents table $(q "SELECT pg_size_pretty(pg_table_size('agentmesh.agents'))"), hot $(q "SELECT n_tup_hot_upd || '/' || n_tup_upd FROM pg_stat_user_tables WHERE relid = 'agentmesh.agents'::regclass")" \
            | tee -a "${RAW}/day_sizes.txt"
    done
    wait "${pg}"
    sleep 1
    a1=$(q "SELECT count(*) FROM agentmesh.audit_events")
    agents_end=$(q "SELECT pg_table_size('agentmesh.agents')")
    read -r upd hot < <(q "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'agentmesh.agents'::regclass" | tr '|' ' ')
    local n_hb; n_hb=$(awk '/number of transactions actually processed/ {print $NF}' "${RAW}/day_heartbeats.txt")
    say "day: ${n_hb} heartbeats over ${SCALE_SMALL} agents in ${DAY_MINUTES} min ($(awk -v n="${n_hb}" -v a="${SCALE_SMALL}" 'BEGIN {printf "%.1f per agent = %.1f%% of a day at a 5-minute interval", n / a, n / a / 288 * 100}'))"
    say "day: end sizes:   $(sizes)"
    say "day: agents table ${agents_start} -> ${agents_end} bytes ($(awk -v a="${agents_end}" -v b="${agents_start}" 'BEGIN {printf "%.2fx", a / b}'), target <= 2x); HOT updates ${hot}/${upd} ($(awk -v h="${hot}" -v u="${upd}" 'BEGIN {printf "%.1f%%", u ? h * 100 / u : 0}'))"
    say "day: audit_events rows ${a0} -> ${a1}; heartbeat events ${hb0} -> $(q "SELECT count(*) FROM agentmesh.audit_events WHERE event_type = 'heartbeat'") (by type since start: $(q "SELECT coalesce(string_agg(event_type || '=' || n, ', '), 'none') FROM (SELECT event_type::text, count(*) n FROM agentmesh.audit_events WHERE event_id > (SELECT max(event_id) - (${a1} - ${a0}) FROM agentmesh.audit_events) GROUP BY 1) x"))"
    say "day: autovacuum runs on agents: $(q "SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'agentmesh.agents'::regclass")"
}

# memory_only: the worker's private memory over PASSES passes in which every
# pass does write work.  The fleet's policy makes agents fall silent after 2 s
# and credentials due for rotation every 20 s, and a rate-limited heartbeat
# driver (MEM_RATE/s, uniform over the fleet) keeps agents coming back, so
# each pass records missed heartbeats, seals the events of the last second and
# every ~20th pass rotates the whole fleet.  A leak grows with that work.
# The reference point is 10 passes after the regime starts: by then every code
# path of a pass has run once (the first write pass fills the process's
# catalog, relation and plan caches; that one-time step is measured
# separately by MEM_IDLE=1, the idle-then-work fleet of earlier runs).
memory_only() {
    local out="${RESULTS}/memory-summary.txt" n wp r p base r10="" drv
    : >"${out}"
    say() { echo "$*" | tee -a "${out}"; }
    say "agentmesh_lifecycle benchmark (worker memory) - $(date -u '+%Y-%m-%d %H:%M UTC')"
    say "machine: nproc=${NPROC}, memory ${MEM}, CPU ${CPU}; PostgreSQL ${PGVER}; extension: ${CODE}"
    if [[ ${MEM_IDLE:-0} != 1 ]]; then
        q "UPDATE agentmesh.policies SET heartbeat_interval = '2 seconds', max_credential_ttl = '30 seconds',
             rotation_overlap = '10 seconds' WHERE name = 'default'" >/dev/null
    fi
    load_agents 1 "${MEM_AGENTS}"
    if [[ ${MEM_IDLE:-0} == 1 ]]; then
        say "fleet: ${MEM_AGENTS} active agents, default policy, no heartbeats (the passes find missed heartbeats once, after 5 minutes, then idle); naptime 1 s"
    else
        as_pg pgbench -h "${W}" -p "${PORT}" -n -M prepared -c 1 -j 1 -R "${MEM_RATE}" -T 100000 \
            -D n="${MEM_AGENTS}" -f "${BENCH_DIR}/workloads/w1_heartbeat_ext.sql" bench \
            >"${RAW}/memory_heartbeats.txt" 2>&1 &
        drv=$!
        # the fleet's credentials enter their rotation window 20 s after loading
        sleep 20
        say "fleet: ${MEM_AGENTS} active agents; policy: heartbeat_interval 2 s, max_credential_ttl 30 s, rotation_overlap 10 s; heartbeats at ${MEM_RATE}/s uniform over the fleet; naptime 1 s"
    fi
    base=$(wstatus passes); base=${base:-0}
    q "ALTER SYSTEM SET agentmesh_lifecycle.naptime = 1" >/dev/null
    q "SELECT pg_reload_conf()" >/dev/null
    for n in $(printf '%s\n' 10 100 250 500 "${PASSES}" | sort -nu); do
        ((n > PASSES)) && continue
        wait_passes $((base + n))
        wp=$(wstatus pid); p=$(($(wstatus passes) - base)); r=$(rss_of "${wp}")
        [[ -z ${r10} ]] && r10="${r}"
        say "after ${p} passes: worker pid ${wp} VmRSS/RssAnon/RssShmem ${r} kB ($(rss_pct "${r}" "${r10}") vs 10 passes)"
    done
    [[ -n ${drv:-} ]] && { kill "${drv}" 2>/dev/null || true; wait "${drv}" 2>/dev/null || true; }
    say "private memory (RssAnon) after ${p} vs 10 passes: $(awk -v a="${r}" -v b="${r10}" 'BEGIN {split(a, x, "/"); split(b, y, "/"); d = (x[2] - y[2]) * 100 / y[2]; printf "%+.1f%% (target within 10%%: %s)", d, (d <= 10 && d >= -10) ? "met" : "missed"}'); VmRSS also counts the shared_buffers pages the worker has touched (RssShmem), which grows with the data it reads and writes"
    say "worker_status: $(q "SELECT format('passes=%s errors=%s last_pass_duration=%s', passes, errors, last_pass_duration) FROM agentmesh.worker_status WHERE datname = current_database()")"
    say "work done by the passes (audit events by type): $(q "SELECT string_agg(event_type || '=' || n, ', ' ORDER BY event_type) FROM (SELECT event_type::text, count(*) n FROM agentmesh.audit_events WHERE actor = 'agentmesh-maintenance' GROUP BY 1) x"); seals: $(q "SELECT count(*) FROM agentmesh.audit_seals")"
}

case "${MODE}" in
    memory) memory_only ;;
    throughput) throughput ;;
    scale) scale ;;
    all) throughput; scale ;;
esac
log "summary tables in ${RESULTS}; raw outputs in ${RAW}"
