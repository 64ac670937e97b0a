#!/usr/bin/env bash
# Build PostgreSQL 18 for the test command, once, into a cache outside the clone.
#
#   bash scripts/pg18.sh          print the install prefix (building it first if needed)
#
# Debian 12 ships PostgreSQL 15 only.  PostgreSQL 18's source is taken from
# Debian's own source package (suite sid), through a private apt
# configuration that adds that suite's deb-src line: the system's apt sources
# are never changed and no sid binary package is installed.  apt checks the
# downloaded files against the signed suite index.  The upstream tarball
# inside the source package is built without Debian's patches (they adapt the
# server to Debian's file layout, which a test build does not want).
#
# The result lives in ${AGENTMESH_PG_CACHE:-/var/cache/agentmesh_lifecycle}/pg-<version>
# and is reused whenever it is complete (marked by a .complete file), so only
# the first run on a machine pays for the download and the build (~150 s on
# 2 cores).  Only what the tests need is built: the server, the client
# programs, pgcrypto, pg_regress, the isolation tester and the TAP modules.
set -euo pipefail

CACHE="${AGENTMESH_PG_CACHE:-/var/cache/agentmesh_lifecycle}"
SUITE_URI="http://deb.debian.org/debian"
SRC_PACKAGE=postgresql-18
BUILD_PACKAGES=(bison flex libssl-dev zlib1g-dev build-essential libipc-run-perl perl dpkg-dev)

note() { printf '==> pg18: %s\n' "$*" >&2; }

# A complete earlier build of any 18.x is good enough: the tests need "18",
# and sid may have moved on since that build was made.
for done_mark in "${CACHE}"/pg-18.*/.complete; do
    if [[ -f ${done_mark} ]]; then
        dirname "${done_mark}"
        exit 0
    fi
done

[[ ${EUID} -eq 0 ]] || { echo "scripts/pg18.sh: the first build needs root (apt-get, ${CACHE})" >&2; exit 1; }

missing=()
for p in "${BUILD_PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "${p}" 2>/dev/null || true) == installed ]] || missing+=("${p}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    note "installing build packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/agentmesh-pg18.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

# Private apt state: its own source list, its own lists directory.
mkdir -p "${work}/apt/lists/partial"
printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s sid main\n' \
    "${SUITE_URI}" >"${work}/apt/sources.list"
APT_OPTS=(
    -o "Dir::Etc::sourcelist=${work}/apt/sources.list"
    -o "Dir::Etc::sourceparts=/dev/null"
    -o "Dir::State::Lists=${work}/apt/lists"
    -o "APT::Sandbox::User=root"
)
note "reading Debian sid's source index (private apt configuration)"
apt-get "${APT_OPTS[@]}" -qq update
version="$(apt-cache "${APT_OPTS[@]}" showsrc "${SRC_PACKAGE}" | awk '/^Version:/ { print $2; exit }')"
[[ -n ${version} ]] || { echo "scripts/pg18.sh: source package ${SRC_PACKAGE} not found in sid" >&2; exit 1; }
upstream="${version%%-*}"
prefix="${CACHE}/pg-${upstream}"
note "downloading ${SRC_PACKAGE} ${version} (source package)"
(cd "${work}" && apt-get "${APT_OPTS[@]}" -qq source --download-only "${SRC_PACKAGE}=${version}")
tarball="$(ls "${work}"/${SRC_PACKAGE}_"${upstream}".orig.tar.* | head -n 1)"

note "building PostgreSQL ${upstream} into ${prefix}"
mkdir -p "${work}/build"
tar -C "${work}/build" --strip-components=1 -xf "${tarball}"
rm -rf "${prefix}"
log="${work}/build.log"
if ! (
    cd "${work}/build" &&
    ./configure --prefix="${prefix}" --enable-tap-tests --with-openssl \
        --without-icu --without-readline --without-llvm &&
    make -j"$(nproc)" &&
    make install &&
    make -C contrib/pgcrypto install &&
    make -C src/test/isolation install
) >"${log}" 2>&1; then
    tail -n 40 "${log}" >&2
    echo "scripts/pg18.sh: the PostgreSQL ${upstream} build failed" >&2
    exit 1
fi
chmod -R a+rX "${prefix}"
touch "${prefix}/.complete"
note "PostgreSQL ${upstream} is ready"
printf '%s\n' "${prefix}"
