#!/usr/bin/env bash
# The project's test command:   bash scripts/test.sh   (as root, or as a user with sudo)
#
# On a fresh Debian 12 machine this installs the build/test packages, builds
# PostgreSQL 18 once (scripts/pg18.sh, cached outside the clone), then for
# each tested PostgreSQL version (15, then 18) builds and installs the
# extension and runs every test suite.  It prints a line per version and ends
# with one line "N passed, M failed" over all of them.  Exit status is 0 only
# if M == 0 and N > 0.
#
# Stages, per version (each runs even if an earlier one failed, so one report
# shows all):
#   regress    pg_regress over sql/<test>.sql      (make installcheck, REGRESS only)
#   isolation  isolation tester over test/specs/*  (make installcheck, ISOLATION only)
#   tap        prove over test/t/*.pl              (make installcheck, TAP only)
#   fuzz       test/fuzz/run.sh --short            (only if the script exists)
#   load       test/load/run.sh --short            (only if the script exists)
#
# Options:
#   --pg N     run one version only (15 or 18); may be given more than once
#   --quick    regress + isolation only (skip TAP, fuzz, load) for fast iteration
#
# Environment:
#   KEEP_WORKDIR=1       keep the staged copies (results, logs) and print their paths
#   STAGE_TIMEOUT=N      seconds before a stage is killed (default 1800)
#   AGENTMESH_PG_CACHE   where scripts/pg18.sh keeps its build
#                        (default /var/cache/agentmesh_lifecycle)
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

QUICK=0
VERSIONS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --pg)
            [[ $# -ge 2 ]] || die "--pg needs a version (${SUPPORTED_TEST_VERSIONS[*]})"
            [[ " ${SUPPORTED_TEST_VERSIONS[*]} " == *" $2 "* ]] \
                || die "--pg $2: tested versions are ${SUPPORTED_TEST_VERSIONS[*]}"
            VERSIONS+=("$2"); shift ;;
        --pg=*) set -- --pg "${1#--pg=}" "${@:2}"; continue ;;
        -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done
[[ ${#VERSIONS[@]} -gt 0 ]] || VERSIONS=("${SUPPORTED_TEST_VERSIONS[@]}")

STAGE_TIMEOUT="${STAGE_TIMEOUT:-1800}"
PASSED=0
FAILED=0
COMPLETED=0   # set once every stage has run; otherwise the EXIT trap counts an abort
WORKDIR=""
WORKDIRS=()
LOGDIR=""
LOGROOT=""

# Always end with exactly one "N passed, M failed" line, even when a step
# before the test stages (apt, build, install) aborts the script: that counts
# as one failure so that CI never sees a green "0 failed" from a broken build.
finish() {
    local rc=$?
    trap - EXIT
    local d
    for d in "${WORKDIRS[@]}"; do
        [[ -d ${d} ]] || continue
        if [[ ${KEEP_WORKDIR:-0} == 1 ]]; then
            echo "(work directory kept: ${d})"
        else
            rm -rf "${d}" 2>/dev/null || as_root rm -rf "${d}" || true
        fi
    done
    [[ -n ${LOGROOT} ]] && rm -rf "${LOGROOT}"
    if [[ ${COMPLETED} != 1 ]]; then
        echo "test.sh aborted (exit status ${rc}) before all stages ran; counting that as a failure"
        FAILED=$((FAILED + 1))
    fi
    echo "${PASSED} passed, ${FAILED} failed"
    if [[ ${FAILED} -eq 0 && ${PASSED} -gt 0 ]]; then exit 0; fi
    exit 1
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- helpers ---------------------------------------------------------------

# make_var NAME: the value of a variable as the project's Makefile computes it
# (e.g. REGRESS), so that which tests exist is decided by the Makefile and not
# guessed here.  The extra makefile is read from stdin.
make_var() {
    (cd "${WORKDIR}" && as_pg make -s --no-print-directory "${MAKE_ARGS[@]}" \
        -f Makefile -f - "print-$1") <<'EOF'
print-%:
	@echo '$($*)'
EOF
}

# run_stage LOG CMD...: run CMD as the unprivileged user in the work directory,
# show its output and keep a copy in LOG.  Returns the command's exit status
# instead of aborting (set -e), because later stages must still run.
run_stage() {
    local logfile="$1"; shift
    local rc=0
    (cd "${WORKDIR}" && as_pg timeout --kill-after=30 "${STAGE_TIMEOUT}" "$@") 2>&1 \
        | tee "${logfile}" || rc=$?
    return "${rc}"
}

# count_pg_regress LOG: pass/fail counts from pg_regress / isolation tester
# output.  PG15 prints one line per test:
#     test basic                        ... ok           19 ms
#     test second                       ... FAILED       15 ms
# (tests inside a parallel group are indented instead of prefixed by "test");
# PG16 and later print TAP-style lines:
#     ok 1         - basic                                      19 ms
#     not ok 2     - second                                     15 ms
# ("+" instead of "-" inside a parallel group).  Ignored failures
# ("failed (ignored)", "# (ignored)") count as neither.  Prints "P F".
count_pg_regress() {
    awk '
        /\(ignored\)/                                     { next }
        /^(test +| +)[^ ]+ +\.\.\. +ok( |$)/                { p++ }
        /^(test +| +)[^ ]+ +\.\.\. +FAILED( |$)/            { f++ }
        /^ok [0-9]+ +[-+] [^ ]/                            { p++ }
        /^not ok [0-9]+ +[-+] [^ ]/                        { f++ }
        END { printf "%d %d\n", p, f }
    ' "$1"
}

# count_prove LOG: pass/fail counts from prove's closing summary, which is
# printed after all test output (so it cannot be interleaved with stderr the
# way "ok N" lines can).  Per failing file prove prints
#     test/t/001_x.pl (Wstat: 256 (exited 1) Tests: 3 Failed: 1)
#       Parse errors: Bad plan.  You planned 3 tests but ran 1.
# and at the end "Files=F, Tests=T, ...".  Passed = T minus failed assertions;
# failed = failed assertions + planned-but-never-run assertions, and at least
# one per failing file (a script that dies before any assertion, or exits
# non-zero after passing all of them, still fails).  A script prove never
# started (after a "Bail out!", prove stops) counts as one failure: EXPECTED
# is the number of scripts given to prove, "Files=F" the number it ran.
# Prints "P F BADFILES NOTRUN" where BADFILES is a comma-separated list of
# failing scripts ("-" if none).
count_prove() {
    awk -v expected="$2" '
        function close_file() {
            if (cur != "") {
                extra = notrun > 0 ? notrun : 0
                n = curfail + extra
                if (n == 0) n = 1
                failed += n
                bad = bad (bad == "" ? "" : ",") cur
            }
            cur = ""; curfail = 0; notrun = 0
        }
        /^[^ ].* \(Wstat: .*Tests: [0-9]+ Failed: [0-9]+\)$/ {
            close_file()
            cur = $1
            match($0, /Failed: [0-9]+\)$/)
            curfail = substr($0, RSTART + 8, RLENGTH - 9) + 0
            assert_failed += curfail
            next
        }
        cur != "" && /You planned [0-9]+ tests? but ran [0-9]+/ {
            match($0, /planned [0-9]+/); planned = substr($0, RSTART + 8, RLENGTH - 8) + 0
            match($0, /ran [0-9]+/);     ran = substr($0, RSTART + 4, RLENGTH - 4) + 0
            notrun = planned - ran
            next
        }
        /^Files=[0-9]+, Tests=[0-9]+/ {
            close_file()
            match($0, /Tests=[0-9]+/); total = substr($0, RSTART + 6, RLENGTH - 6) + 0
            match($0, /Files=[0-9]+/); files = substr($0, RSTART + 6, RLENGTH - 6) + 0
            seen_summary = 1
        }
        END {
            close_file()
            if (!seen_summary) { print "0 0 - 0"; exit }
            notrun_files = expected - files
            if (notrun_files < 0) notrun_files = 0
            printf "%d %d %s %d\n", total - assert_failed, failed + notrun_files,
                   (bad == "" ? "-" : bad), notrun_files
        }
    ' "$1"
}

# add_counts STAGE P F RC: add a stage's counts to the totals.  A stage that
# exits non-zero without any counted failure (instance did not start, missing
# expected file, crash, timeout) counts as one failure of its own.
add_counts() {
    local stage="$1" p="$2" f="$3" rc="$4"
    if [[ ${rc} -ne 0 && ${f} -eq 0 ]]; then
        echo "*** ${stage}: exited with status ${rc} without reporting a failed test; counting 1 failure"
        f=1
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    V_PASSED=$((V_PASSED + p))
    V_FAILED=$((V_FAILED + f))
    STAGE_SUMMARY+=("$(printf 'pg%-3s %-10s %4d passed, %4d failed' "${PG_MAJOR}" "${stage}" "${p}" "${f}")")
}

# show_file TITLE FILE [LINES [head|tail]]: print the end (logs: the latest
# messages matter) or the start (diffs: the first failing test matters) of a
# diagnostics file.  Read as the unprivileged user: server logs are mode 0600.
show_file() {
    local title="$1" file="$2" lines="${3:-60}" end="${4:-tail}" total
    as_pg test -s "${file}" || return 0
    total="$(as_pg cat "${file}" | wc -l)"
    if [[ ${total} -le ${lines} ]]; then
        echo "----- ${title}: ${file#"${WORKDIR}"/} -----"
        as_pg cat "${file}"
    else
        echo "----- ${title}: ${file#"${WORKDIR}"/} (${end} ${lines} of ${total} lines) -----"
        as_pg "${end}" -n "${lines}" "${file}"
    fi
    echo "----- end of ${file#"${WORKDIR}"/} -----"
}

# --- setup: packages ------------------------------------------------------------

STAGE_SUMMARY=()
VERSION_SUMMARY=()
ensure_packages
# Stage logs belong to the invoking user (tee runs as that user), so they live
# outside the unprivileged user's work directories.
LOGROOT="$(mktemp -d "${TMPDIR:-/tmp}/agentmesh_lifecycle-logs.XXXXXX")"

# --- stages 1 and 2: pg_regress and the isolation tester ------------------------
#
# Both are "make installcheck" with the other suites switched off, both print
# pg_regress's per-test lines, and both leave a regression.diffs and a
# postmaster.log behind: one function runs either.
#   $1 stage name, $2 Makefile variable listing its tests, $3 where its tests
#   live (for the "skipped" message), $4 its output directory, $5... the make
#   overrides that switch the other suites off
pg_regress_stage() {
    local name=$1 var=$2 where=$3 outdir=$4
    shift 4
    local tests rc=0 p f
    tests="$(make_var "${var}")"
    if [[ -z ${tests// /} ]]; then
        log "${name}: no tests (${where}) - skipped"
        return
    fi
    log "${name}: ${tests}"
    run_stage "${LOGDIR}/${name}.log" make "${MAKE_ARGS[@]}" installcheck "$@" || rc=$?
    read -r p f < <(count_pg_regress "${LOGDIR}/${name}.log")
    add_counts "${name}" "${p}" "${f}" "${rc}"
    if [[ ${rc} -ne 0 || ${f} -ne 0 ]]; then
        show_file "${name} diffs" "${outdir}/regression.diffs" 600 head
        show_file "${name} server log" "${outdir}/log/postmaster.log" 60
    fi
}


# --- stage 3: TAP --------------------------------------------------------------

tap_stage() {
    local tap_tests rc p f badfiles notrun t name srvlog
    local -a tap_files bad
    tap_tests="$(make_var PROVE_TESTS)"
    if [[ ${QUICK} -eq 1 ]]; then
        log "tap: skipped (--quick)"
    elif [[ -z ${tap_tests// /} ]]; then
        log "tap: no tests (test/t/*.pl) - skipped"
    else
        log "tap: ${tap_tests}"
        rc=0
        # PROVE_FLAGS=-v shows every assertion; counting uses prove's summary.
        run_stage "${LOGDIR}/tap.log" make "${MAKE_ARGS[@]}" installcheck REGRESS= ISOLATION= PROVE_FLAGS=-v || rc=$?
        read -r -a tap_files <<<"${tap_tests}"
        read -r p f badfiles notrun < <(count_prove "${LOGDIR}/tap.log" "${#tap_files[@]}")
        if [[ ${notrun} -gt 0 ]]; then
            echo "*** tap: ${notrun} of ${#tap_files[@]} scripts never ran (prove stopped early); counting 1 failure each"
        fi
        add_counts tap "${p}" "${f}" "${rc}"
        if [[ ${badfiles} != - ]]; then
            IFS=, read -r -a bad <<<"${badfiles}"
            for t in "${bad[@]}"; do
                name="$(basename "${t}" .pl)"
                show_file "TAP log of ${name}" "${WORKDIR}/tmp_check/log/regress_log_${name}" 80
                while IFS= read -r srvlog; do
                    show_file "server log" "${srvlog}" 40
                done < <(as_pg find "${WORKDIR}/tmp_check/log" -maxdepth 1 -name "${name}_*.log" 2>/dev/null | sort)
            done
        fi
    fi
}

# --- stages 4 and 5: optional fuzz and load short runs -------------------------

# run_external STAGE SCRIPT: run SCRIPT --short; its last line must be
# "N passed, M failed".  Its output is indented so that the only unindented
# "N passed, M failed" line in our output is the final one.
run_external() {
    local stage="$1" script="$2" rc=0 p=0 f=0 line
    if [[ ! -f ${WORKDIR}/${script} ]]; then
        log "${stage}: ${script} not present - skipped"
        return 0
    fi
    if [[ ${QUICK} -eq 1 ]]; then
        log "${stage}: skipped (--quick)"
        return 0
    fi
    log "${stage}: ${script} --short"
    run_stage "${LOGDIR}/${stage}.log" bash "${script}" --short | sed -u 's/^/    /' || rc=$?
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "${LOGDIR}/${stage}.log" | tail -n 1 || true)"
    if [[ -n ${line} ]]; then
        read -r p _ f _ <<<"${line}"
    else
        echo "*** ${stage}: no closing 'N passed, M failed' line; counting 1 failure"
        f=1
    fi
    add_counts "${stage}" "${p}" "${f}" "${rc}"
}

# --- one tested version ----------------------------------------------------------

# run_version MAJOR: build, install and run every stage against that version.
run_version() {
    V_PASSED=0
    V_FAILED=0
    echo
    log "PostgreSQL $1"
    select_pg "$1"
    WORKDIR="$(make_workdir "agentmesh_lifecycle-test-pg$1")"
    WORKDIRS+=("${WORKDIR}")
    LOGDIR="${LOGROOT}/pg$1"
    mkdir -p "${LOGDIR}"
    log "staging sources for user ${PG_USER}"
    stage_source "${WORKDIR}"
    build_and_install "${WORKDIR}"
    log "PostgreSQL $("${PG_CONFIG}" --version | awk '{print $2}') from ${PG_BINDIR}"

    pg_regress_stage regress REGRESS "sql/<test>.sql" "${WORKDIR}" ISOLATION= TAP_TESTS=
    pg_regress_stage isolation ISOLATION "test/specs/*.spec" "${WORKDIR}/output_iso" REGRESS= TAP_TESTS=
    tap_stage
    run_external fuzz test/fuzz/run.sh
    run_external load test/load/run.sh

    VERSION_SUMMARY+=("$(printf 'PostgreSQL %s: %d passed, %d failed' "$1" "${V_PASSED}" "${V_FAILED}")")
}

for v in "${VERSIONS[@]}"; do
    run_version "${v}"
done

# --- summary -------------------------------------------------------------------

echo
echo "==> summary"
for s in "${STAGE_SUMMARY[@]}"; do echo "    ${s}"; done
# Per-version lines are indented, so that the only unindented
# "N passed, M failed" line is the final one over all versions.
for s in "${VERSION_SUMMARY[@]}"; do echo "    ${s}"; done
COMPLETED=1
# finish (EXIT trap) prints the final "N passed, M failed" line and sets the
# exit status.
