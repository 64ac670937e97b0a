# shellcheck shell=bash
# Shared helpers for scripts/test.sh and scripts/demo.sh.
#
# Sourced, not executed.  The callers run with `set -euo pipefail`; every
# helper here is written to be safe under that.
#
# What lives here and why:
#   * ensure_packages  - a fresh Debian 12 box has none of the build/test
#                        dependencies, so the scripts install them; reruns skip
#                        apt entirely (dpkg-query says everything is present).
#   * as_root / as_pg  - initdb and pg_regress refuse to run as root, while apt
#                        and `make install` need root.  We therefore do every
#                        build/test step as the unprivileged `postgres` user
#                        (created by the postgresql-15 package) and only the
#                        install steps as root.
#   * stage_source     - the unprivileged user needs a tree it owns (test
#                        instances, results/, tmp_check/ are written next to
#                        the sources), so we copy the repository into a
#                        temporary directory instead of building in
#                        place.  This also keeps root-owned build products out
#                        of the developer's checkout.
#   * build_and_install - make as the unprivileged user, make install as root.
#
# Also sourced by test/bench/run.sh: keep the names and behaviour of
# ensure_packages, make_workdir, stage_source, build_and_install, as_pg,
# as_root, log, die, REPO_ROOT and MAKE_ARGS stable.

# Where the repository lives: one level above scripts/.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The PostgreSQL major version the helpers below work with; select_pg
# switches it.  15 is Debian 12's own; 18 is built once by scripts/pg18.sh
# into a cache outside the clone.
PG_MAJOR=15
PG_BINDIR="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BINDIR}/pg_config"
SUPPORTED_TEST_VERSIONS=(15 18)
# The Debian server package creates this system user; it owns nothing of ours
# except the staged copy of the sources and throwaway clusters.
PG_USER="${PG_USER:-postgres}"

# Deterministic messages and collation whatever the caller's environment is
# (CI often starts with no LANG at all).  C.UTF-8 ships with libc6 on
# Debian 12, so no locales package is needed.  The temporary instances that
# pg_regress/initdb create inherit this, so expected output does not depend
# on the machine.
export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset LANGUAGE

# Packages the build and the tests need.
#  - postgresql-contrib: pgcrypto, used by the tests and the demo.  The brief
#    name "postgresql-contrib-15" is only a virtual package on Debian 12
#    (provided by postgresql-15 itself), which dpkg-query never reports as
#    installed; the real package is postgresql-contrib.
#  - libipc-run-perl: required by PostgreSQL::Test::Cluster for the TAP tests.
#  - util-linux: provides runuser (Essential on Debian, listed for clarity).
#  - python3: test/fuzz/run.sh generates its calls with test/fuzz/gen.py; a
#    minimal Debian 12 image has no python3.
#  - python3-psycopg: the audit witness, tools/witness, and its TAP test
#    (test/t/040_witness.pl; issue 11); the reference agent
#    (examples/agent.py), which test/t/045_agent_rotation.pl runs.
#  - the integrations the TAP tests exercise with PostgreSQL 15 (each test
#    skips, saying so, where its package has no build, e.g. on the self-built
#    18; docs/integrations.md): postgresql-15-cron (test/t/043_pg_cron.pl),
#    prometheus-postgres-exporter (041_prometheus.pl), pgbouncer
#    (042_pgbouncer.pl), postgresql-15-pgaudit (021_log_secrecy.pl),
#    python3-psycopg (042_pgbouncer.pl's extended-protocol client and
#    examples/events_consumer.py).
REQUIRED_PACKAGES=(
    build-essential
    postgresql-15
    postgresql-server-dev-15
    postgresql-contrib
    libipc-run-perl
    perl
    python3
    python3-psycopg
    util-linux
    postgresql-15-cron
    postgresql-15-pgaudit
    pgbouncer
    prometheus-postgres-exporter
)

log() {
    printf '==> %s\n' "$*"
}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly if we are root, otherwise through sudo.
as_root() {
    if [[ ${EUID} -eq 0 ]]; then
        "$@"
    else
        command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run this script as root"
        sudo "$@"
    fi
}

# Run a command as the unprivileged PostgreSQL user, in the current directory.
# The environment is passed explicitly because sudo resets it and runuser
# resets parts of it; PATH puts the PostgreSQL 15 binaries first (Debian only
# puts version-independent wrappers on the default PATH).
as_pg() {
    local -a envv=(
        env
        "PATH=${PG_BINDIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "LC_ALL=${LC_ALL}" "LANG=${LANG}"
        "HOME=$(getent passwd "${PG_USER}" | cut -d: -f6)"
        "PG_CONFIG=${PG_CONFIG}"
        "PG_BINDIR=${PG_BINDIR}"
    )
    if [[ $(id -un) == "${PG_USER}" ]]; then
        "${envv[@]}" "$@"
    elif [[ ${EUID} -eq 0 ]]; then
        runuser -u "${PG_USER}" -- "${envv[@]}" "$@"
    else
        sudo -u "${PG_USER}" -- "${envv[@]}" "$@"
    fi
}

# select_pg MAJOR: make the helpers (as_pg's PATH, PG_CONFIG, MAKE_ARGS)
# use that PostgreSQL version, building 18 first if it is not cached yet.
# Call ensure_packages before (15's packages also provide the postgres user).
select_pg() {
    local prefix
    case "$1" in
        15)
            PG_BINDIR=/usr/lib/postgresql/15/bin ;;
        18)
            prefix="$(as_root env AGENTMESH_PG_CACHE="${AGENTMESH_PG_CACHE:-/var/cache/agentmesh_lifecycle}" \
                bash "${REPO_ROOT}/scripts/pg18.sh")" || die "PostgreSQL 18 could not be built (scripts/pg18.sh)"
            PG_BINDIR="${prefix}/bin" ;;
        *)
            die "unsupported PostgreSQL version $1 (tested: ${SUPPORTED_TEST_VERSIONS[*]})" ;;
    esac
    PG_MAJOR="$1"
    PG_CONFIG="${PG_BINDIR}/pg_config"
    MAKE_ARGS=(PG_CONFIG="${PG_CONFIG}" with_llvm=no)
    [[ -x ${PG_CONFIG} ]] || die "${PG_CONFIG} not found"
    [[ -f "$("${PG_CONFIG}" --sharedir)/extension/pgcrypto.control" ]] \
        || die "pgcrypto is not installed for PostgreSQL ${PG_MAJOR}"
}

# Print the names of required packages that are not installed.
missing_packages() {
    local pkg status
    for pkg in "${REQUIRED_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)"
        [[ ${status} == installed ]] || printf '%s\n' "${pkg}"
    done
}

# Install whatever is missing; do nothing (and touch no network) otherwise,
# so that reruns are fast and work offline.
ensure_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "this script supports Debian 12 (dpkg/apt) only"
    local -a missing
    mapfile -t missing < <(missing_packages)
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "all required Debian packages are installed"
    else
        log "installing Debian packages: ${missing[*]}"
        # noninteractive: CI has no stdin; -qq keeps the log readable.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
        mapfile -t missing < <(missing_packages)
        [[ ${#missing[@]} -eq 0 ]] || die "packages still missing after apt-get: ${missing[*]}"
    fi
    [[ -x ${PG_CONFIG} ]] || die "${PG_CONFIG} not found"
    id -u "${PG_USER}" >/dev/null 2>&1 || die "system user ${PG_USER} does not exist"
    [[ -f "$("${PG_CONFIG}" --sharedir)/extension/pgcrypto.control" ]] \
        || die "pgcrypto is not installed (package postgresql-contrib)"
}

# stage_source DEST: copy the working tree (tracked files plus untracked,
# non-ignored ones - i.e. exactly what the developer would commit) into DEST
# and give it to the unprivileged user.  Build products and test leftovers are
# ignored by .gitignore and therefore not copied.  Without git (e.g. a source
# tarball) fall back to copying everything except known leftovers.
stage_source() {
    local dest="$1"
    # Extracting as the unprivileged user makes it the owner of every file.
    as_pg mkdir -p "${dest}"
    if command -v git >/dev/null 2>&1 && git -c safe.directory='*' -C "${REPO_ROOT}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # `git ls-files` also lists tracked files deleted in the working tree;
        # skip those so tar does not fail on them.  -z keeps odd names intact.
        (
            cd "${REPO_ROOT}" || exit 1
            git -c safe.directory='*' ls-files -z --cached --others --exclude-standard \
                | while IFS= read -r -d '' f; do
                    if [[ -e ${f} || -L ${f} ]]; then printf '%s\0' "${f}"; fi
                  done \
                | tar --null --no-recursion -T - -cf -
        ) | as_pg tar -C "${dest}" -xf -
    else
        tar -C "${REPO_ROOT}" \
            --exclude=.git --exclude=results --exclude=output_iso --exclude=log \
            --exclude='tmp_check*' --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
            --exclude=regression.diffs --exclude=regression.out \
            -cf - . | as_pg tar -C "${dest}" -xf -
    fi
}

# make_args: the arguments every make invocation uses.  with_llvm=no because
# Debian's pg_config says with_llvm=yes, which would make PGXS emit LLVM
# bitcode and require clang, which we neither need nor install.
MAKE_ARGS=(PG_CONFIG="${PG_CONFIG}" with_llvm=no)

# build_and_install DIR: compile as the unprivileged user, install as root.
build_and_install() {
    local dir="$1"
    log "building (make with_llvm=no)"
    (cd "${dir}" && as_pg make -j"$(nproc)" "${MAKE_ARGS[@]}")
    log "installing (make install with_llvm=no, as root)"
    (cd "${dir}" && as_root make "${MAKE_ARGS[@]}" install)
}

# make_workdir PREFIX: a fresh directory under $TMPDIR, owned by the
# unprivileged user (who writes everything in it).  Mode 0755 so that the
# invoking user - root, or a sudoer - can read results and logs; anything
# secret in it (a cluster's data directory) has its own 0700 mode.
make_workdir() {
    local d
    d="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
    chmod 0755 "${d}"
    as_root chown "${PG_USER}:" "${d}"
    printf '%s\n' "${d}"
}
