#!/usr/bin/env bash
# dev/prerequisites.sh: the Debian packages that building and testing wellread need, in the one
# list the Makefile and .ci/run share. Installs the missing ones where it can (as root, with
# apt-get); elsewhere it stops with the one command that would install them. `make` runs it once
# before the first compile (the stamp build/.prerequisites), `.ci/run` before `make test`.
#   dev/prerequisites.sh fuzz   the list plus what `make fuzz` needs (docs/fuzzing.md): clang with
#                               its sanitizer and libFuzzer runtimes, and LLVM's OpenMP. About 500 MB
#                               that building and testing do not use, so only `make fuzz` (and so
#                               .ci/run, which fuzzes) asks for them.
#   dev/prerequisites.sh mpi    the list plus Open MPI (libopenmpi-dev, openmpi-bin): the Makefile
#                               builds the programs with MPI where it finds mpicxx (data-parallel
#                               runs under mpirun, docs/distributed.md), without it otherwise.
#                               Groups combine: `dev/prerequisites.sh fuzz mpi`.
#   WR_PREREQ_PACKAGES   replaces the list (tests)
#   WR_PREREQ_NO_INSTALL=1   never installs: only checks and names the command (tests)
#   WR_PREREQ_BUNDLE=DIR     the libraries come from DIR, a bundle from dev/gpu_bundle.sh that the
#                            compiler finds through CPATH and LIBRARY_PATH (dev/gpu_check.sh on a
#                            bare GPU machine): its headers are checked instead of the packages
set -euo pipefail
if [ -n "${WR_PREREQ_BUNDLE:-}" ]; then
    missing=""
    for f in include/gtest/gtest.h include/nlohmann/json.hpp include/utf8proc.h include/zlib.h; do
        [ -f "$WR_PREREQ_BUNDLE/$f" ] || missing="$missing $f"
    done
    [ -z "$missing" ] && exit 0
    echo "prerequisites: the bundle $WR_PREREQ_BUNDLE lacks$missing (make it again: bash dev/gpu_bundle.sh)" >&2
    exit 1
fi
packages=${WR_PREREQ_PACKAGES:-"build-essential libgtest-dev libutf8proc-dev zlib1g-dev nlohmann-json3-dev gzip jq openssl"}
fuzz_packages="clang libclang-rt-dev libomp-dev"
mpi_packages="libopenmpi-dev openmpi-bin"
for group in "$@"; do
    case "$group" in
        fuzz) packages="$packages $fuzz_packages" ;;
        mpi) packages="$packages $mpi_packages" ;;
        *) echo "usage: dev/prerequisites.sh [fuzz] [mpi]" >&2; exit 2 ;;
    esac
done

if ! command -v dpkg >/dev/null 2>&1; then
    echo "prerequisites: not a Debian-like system (no dpkg): make sure these are installed: $packages" >&2
    exit 0
fi
missing=""
for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

command="apt-get install -y$missing"
if [ "${WR_PREREQ_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "prerequisites: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing
    exit 0
fi
echo "prerequisites: missing Debian packages:$missing" >&2
echo "install them with:  sudo $command" >&2
exit 1
