#!/usr/bin/env bash
# The project's demo command:   bash scripts/demo.sh   (as root, or as a user with sudo)
#
# Installs the packages, builds and installs the extension (same steps as
# scripts/test.sh), then starts a throwaway PostgreSQL 15 cluster, creates the
# extension and walks the tutorial flow in scripts/demo.sql.  The cluster only
# listens on a Unix socket inside its own temporary directory, so it cannot
# clash with (or be reached from) anything else on the machine, and it is
# stopped and deleted when the script exits, however it exits.
#
# Environment:
#   DEMO_PORT=N   port number of the socket file (default 54329; since the
#                 socket lives in a private directory any value works)
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEMO_PORT="${DEMO_PORT:-54329}"
DEMO_DB=agentmesh_demo
WORKDIR=""
PGDATA_DIR=""

cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n ${PGDATA_DIR} ]] && as_pg test -f "${PGDATA_DIR}/postmaster.pid" 2>/dev/null; then
        # immediate: the cluster is about to be deleted, nothing to flush.
        (cd "${WORKDIR}" && as_pg pg_ctl -D "${PGDATA_DIR}" -m immediate -w stop >/dev/null 2>&1) || true
    fi
    if [[ -n ${WORKDIR} && -d ${WORKDIR} ]]; then
        rm -rf "${WORKDIR}" 2>/dev/null || as_root rm -rf "${WORKDIR}" || true
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_packages
WORKDIR="$(make_workdir agentmesh_lifecycle-demo)"
log "staging sources for user ${PG_USER}"
stage_source "${WORKDIR}/src"
# Quietly: the compiler's command lines go to a log file, shown only on failure.
BUILD_LOG="${WORKDIR}/build.log"
log "building the extension (compiler output: ${BUILD_LOG})"
if ! (cd "${WORKDIR}/src" && as_pg make -s -j"$(nproc)" "${MAKE_ARGS[@]}") >"${BUILD_LOG}" 2>&1; then
    tail -n 40 "${BUILD_LOG}"
    die "the build failed"
fi
PKGLIBDIR="$("${PG_CONFIG}" --pkglibdir)"
SHAREDIR="$("${PG_CONFIG}" --sharedir)"
log "installing into the system PostgreSQL ${PG_MAJOR} (as root): ${PKGLIBDIR}/agentmesh_lifecycle.so and ${SHAREDIR}/extension/agentmesh_lifecycle{.control,--*.sql}"
if ! (cd "${WORKDIR}/src" && as_root make -s "${MAKE_ARGS[@]}" install) >>"${BUILD_LOG}" 2>&1; then
    tail -n 40 "${BUILD_LOG}"
    die "make install failed"
fi

# --- throwaway cluster ---------------------------------------------------------

PGDATA_DIR="${WORKDIR}/data"
SOCKDIR="${WORKDIR}/sock"
log "creating a throwaway cluster (Unix socket only)"
# trust auth is safe here: there is no TCP listener and the socket directory
# is only reachable by the cluster owner (mode 0700).
(cd "${WORKDIR}" && as_pg mkdir -m 0700 "${SOCKDIR}")
if ! initdb_out="$(cd "${WORKDIR}" && as_pg initdb -D "${PGDATA_DIR}" -A trust -E UTF8 \
        --locale=C.UTF-8 --no-sync --no-instructions 2>&1)"; then
    printf '%s\n' "${initdb_out}"
    die "initdb failed"
fi
(cd "${WORKDIR}" && as_pg tee -a "${PGDATA_DIR}/postgresql.conf" >/dev/null) <<EOF

# --- added by scripts/demo.sh ---
shared_preload_libraries = 'agentmesh_lifecycle'
listen_addresses = ''
unix_socket_directories = '${SOCKDIR}'
port = ${DEMO_PORT}
EOF

log "starting the cluster"
if ! (cd "${WORKDIR}" && as_pg pg_ctl -D "${PGDATA_DIR}" -l "${WORKDIR}/server.log" -w start >/dev/null); then
    (cd "${WORKDIR}" && as_pg tail -n 40 "${WORKDIR}/server.log") || true
    die "the demo cluster did not start"
fi

# psql_demo ARGS...: psql against the demo database; -X ignores any ~/.psqlrc
# so the output looks the same for everybody.
psql_demo() {
    (cd "${WORKDIR}" && as_pg psql -X -v ON_ERROR_STOP=1 -h "${SOCKDIR}" -p "${DEMO_PORT}" "$@")
}

psql_demo -q -d postgres -c "CREATE DATABASE ${DEMO_DB}"
log "CREATE EXTENSION agentmesh_lifecycle; CREATE EXTENSION pgcrypto;"
psql_demo -q -d "${DEMO_DB}" -c 'CREATE EXTENSION agentmesh_lifecycle' -c 'CREATE EXTENSION pgcrypto'

# --- the tutorial -----------------------------------------------------------------

DEMO_SQL="${WORKDIR}/src/scripts/demo.sql"
if ! as_pg test -f "${DEMO_SQL}"; then
    echo "scripts/demo.sql is missing: the extension is installed and the cluster ran, but there is no tutorial to show."
    exit 1
fi
log "running scripts/demo.sql"
echo
psql_demo -d "${DEMO_DB}" -f "${DEMO_SQL}"
echo
log "demo finished; stopping and removing the throwaway cluster"
