#!/usr/bin/env bash
# Input fuzzing of every agentmesh.lm_* function (and policy DML).
#
#   test/fuzz/run.sh --short      20 000 calls, well under 60 s (part of scripts/test.sh)
#   test/fuzz/run.sh --long       300 000 calls (the documented long run)
#   test/fuzz/run.sh --calls N [--seed S]
#
# gen.py writes N calls with generated bad and edge-case arguments; they run
# in a throwaway cluster (or the server given by PGHOST/PGPORT), each in its
# own subtransaction.  Checks, one line each, then "N passed, M failed":
#   1. every call succeeded or failed with an allowed SQLSTATE (driver.sql
#      lists them with the reason; policy-only ones are allowed for policy DML)
#   2. every function was called and some calls of each kind succeeded or
#      failed in a documented way
#   3. the backend survived (the session is still the same backend) and the
#      server log has no "terminated by signal" / "TRAP" line
#   4. lm_verify_audit() is intact after the run
#   5. invariants: every agent state is in the table, audit seq matches the
#      head, at most two credentials verify per agent, none of a non-active one
# Run as root it re-executes itself as the postgres user (initdb refuses root).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/fuzz/cluster.sh
source "${HERE}/cluster.sh"
reexec_unprivileged "${BASH_SOURCE[0]}" "$@"

CALLS=20000
SEED=42
while [[ $# -gt 0 ]]; do
    case "$1" in
        --short) CALLS=20000 ;;
        --long) CALLS=300000 ;;
        --calls) CALLS="$2"; shift ;;
        --seed) SEED="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

PASS=0
FAIL=0
check() {   # check NAME CONDITION-RESULT(t/f) [detail]
    if [[ $2 == t ]]; then PASS=$((PASS + 1)); echo "ok   - $1"
    else FAIL=$((FAIL + 1)); echo "FAIL - $1 ${3:-}"; fi
}
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

cluster_start "agentmesh_lifecycle.enabled = off" "max_stack_depth = '2MB'" \
    "log_min_messages = warning" "log_min_error_statement = panic"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"; cluster_stop' EXIT

psql -X -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS agentmesh_fuzz"
q "CREATE DATABASE agentmesh_fuzz" >/dev/null
export PGDATABASE=agentmesh_fuzz
psql -X -q -v ON_ERROR_STOP=1 -f "${HERE}/driver.sql" >/dev/null || { echo "driver setup failed"; echo "0 passed, 1 failed"; exit 1; }

FUNCS=$(q "SELECT string_agg(proname, ',') FROM pg_proc WHERE pronamespace = 'agentmesh'::regnamespace AND proname LIKE 'lm\\_%'")
python3 "${HERE}/gen.py" "${CALLS}" "${SEED}" "${FUNCS}" >"${WORK}/calls.tsv"
psql -X -q -v ON_ERROR_STOP=1 -c "\\copy fuzz_calls (kind, role, sql) FROM '${WORK}/calls.tsv'"

# one transaction per batch of 500 calls; a batch whose backend dies is
# counted, the server is waited for, and the run goes on
start=$(date +%s.%N)
rc=0
lost=0
for ((lo = 1; lo <= CALLS; lo += 500)); do
    if ! psql -X -q -A -t -v ON_ERROR_STOP=1 -c "SELECT fuzz_batch(${lo}, $((lo + 499)))" >/dev/null 2>>"${WORK}/run.err"; then
        rc=1; lost=$((lost + 1))
        for _ in $(seq 1 60); do psql -X -q -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done
    fi
done
end=$(date +%s.%N)
secs=$(python3 -c "print(${end} - ${start})")
ran=$(q "SELECT count(*) FROM fuzz_results")
echo "fuzz: ${ran} of ${CALLS} calls in $(printf '%.1f' "${secs}") s ($(python3 -c "print(round(${ran:-0} / max(${secs}, 0.001)))") calls/s), seed ${SEED}, ${lost} batches lost to a crash"

q "SELECT kind, sqlstate, count(*) FROM fuzz_results GROUP BY 1, 2 ORDER BY 1, 2" | column -t -s '|' | sed 's/^/    /'

bad=$(q "SELECT count(*) FROM fuzz_results r LEFT JOIN fuzz_allowed a USING (sqlstate)
         WHERE a.sqlstate IS NULL OR (a.policy_dml_only AND r.kind <> 'policy')")
check "every call succeeded or failed with an allowed SQLSTATE" "$([[ ${bad} == 0 && ${ran} == "${CALLS}" ]] && echo t || echo f)" \
    "(${bad} unexpected, ${ran}/${CALLS} ran)"
if [[ ${bad} != 0 ]]; then
    q "SELECT r.kind, r.sqlstate, count(*), min(r.message), min(c.sql)
         FROM fuzz_results r JOIN fuzz_calls c USING (n) LEFT JOIN fuzz_allowed a USING (sqlstate)
        WHERE a.sqlstate IS NULL OR (a.policy_dml_only AND r.kind <> 'policy')
        GROUP BY 1, 2 ORDER BY 1, 2" | cut -c1-400 | sed 's/^/    unexpected: /'
fi
missing=$(q "SELECT string_agg(p.proname, ',') FROM pg_proc p
              WHERE p.pronamespace = 'agentmesh'::regnamespace AND p.proname LIKE 'lm\\_%'
                AND p.proname NOT IN (SELECT kind FROM fuzz_results)")
check "every lm_* function was fuzzed" "$([[ -z ${missing} ]] && echo t || echo f)" "(missing: ${missing})"
noerr=$(q "SELECT count(DISTINCT kind) FILTER (WHERE sqlstate = '00000') FROM fuzz_results")
echo "    functions with at least one successful call: ${noerr}"

check "the backend survived every batch (${lost} lost)" "$([[ ${rc} == 0 ]] && echo t || echo f)" "$(head -c 300 "${WORK}/run.err")"
log="$(cluster_log)"
if [[ -n ${log} ]]; then
    crashed=$(grep -cE 'terminated by signal|TRAP:|PANIC' "${log}" || true)
    check "server log has no crash" "$([[ ${crashed} == 0 ]] && echo t || echo f)" "(${crashed} lines)"
    grep -E -B1 -A3 'terminated by signal|TRAP:|PANIC' "${log}" | cut -c1-600 | head -20 | sed 's/^/    log: /' 
fi
check "lm_verify_audit() intact after the fuzz" "$(q "SELECT intact FROM agentmesh.lm_verify_audit()")"
check "invariants hold" "$(q "
  SELECT bool_and(a.state IN (SELECT DISTINCT unnest(ARRAY[from_state, to_state]) FROM agentmesh.lm_transitions()))
     AND bool_and(a.audit_seq = (SELECT count(*) FROM agentmesh.audit_events e WHERE e.agent_id = a.agent_id))
     AND bool_and((SELECT count(*) FROM fuzz_tokens t WHERE agentmesh.lm_verify_credential(t.tok) = a.agent_id)
                  <= CASE WHEN a.state = 'active' THEN 2 ELSE 0 END)
    FROM agentmesh.agents a")"

echo "${PASS} passed, ${FAIL} failed"
[[ ${FAIL} -eq 0 ]]
