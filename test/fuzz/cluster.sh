# shellcheck shell=bash
# Throwaway PostgreSQL 15 cluster for test/fuzz and test/load (sourced).
#
#   cluster_start [extra postgresql.conf lines...]   sets PGHOST PGPORT PGDATABASE
#   cluster_stop                                     (also run on EXIT)
#   cluster_log                                      path of the server log
#
# With PGHOST and PGPORT already set, the existing server is used instead and
# nothing is started or stopped (the server must preload the extension).
# initdb refuses root, so as root the caller re-executes itself as postgres
# (see reexec_unprivileged).
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
export PATH="${PG_BINDIR}:${PATH}"
CLUSTER_DIR=""
CLUSTER_OWNED=0

reexec_unprivileged() {
    if [[ ${EUID} -eq 0 ]]; then
        local self; self="$(readlink -f "$1")"; shift
        local -a envv=(PATH="${PATH}" LC_ALL=C.UTF-8)
        [[ -n ${PGHOST:-} ]] && envv+=(PGHOST="${PGHOST}")
        [[ -n ${PGPORT:-} ]] && envv+=(PGPORT="${PGPORT}")
        exec runuser -u postgres -- env "${envv[@]}" bash "${self}" "$@"
    fi
}

cluster_log() { echo "${CLUSTER_DIR:+${CLUSTER_DIR}/server.log}"; }

cluster_start() {
    if [[ -n ${PGHOST:-} && -n ${PGPORT:-} ]]; then
        export PGDATABASE="${PGDATABASE:-postgres}"
        return 0
    fi
    unset PGHOST PGPORT
    CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/agentmesh-cluster.XXXXXX")"
    CLUSTER_OWNED=1
    trap cluster_stop EXIT
    initdb -D "${CLUSTER_DIR}/data" -A trust --no-sync >/dev/null
    {
        echo "shared_preload_libraries = 'agentmesh_lifecycle'"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '${CLUSTER_DIR}'"
        echo "fsync = off"
        echo "log_line_prefix = '%m [%p] '"
        local line
        for line in "$@"; do echo "${line}"; done
    } >>"${CLUSTER_DIR}/data/postgresql.conf"
    export PGHOST="${CLUSTER_DIR}" PGPORT=54329 PGDATABASE=postgres
    pg_ctl -D "${CLUSTER_DIR}/data" -l "${CLUSTER_DIR}/server.log" -o "-p ${PGPORT}" -w start >/dev/null
}

cluster_stop() {
    if [[ ${CLUSTER_OWNED} -eq 1 && -n ${CLUSTER_DIR} ]]; then
        pg_ctl -D "${CLUSTER_DIR}/data" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "${CLUSTER_DIR}"
        CLUSTER_OWNED=0
    fi
}
