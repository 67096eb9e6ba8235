#!/usr/bin/env bash
# dev/gpu_bundle.sh: gathers, on a Debian machine with apt-get (the development machine), the build
# prerequisites a bare GPU machine lacks (it has the CUDA toolkit, g++ and Python, no network and
# none of our Debian -dev packages), into one small folder that travels with the tree to the GPU
# machine, where dev/gpu_check.sh builds against it:
#
#   bash dev/gpu_bundle.sh                  # apt-get download the packages, unpack them into .gpu_bundle/
#   bash dev/gpu_bundle.sh --debs DIR       # the same from .deb files already in DIR (no network)
#   bash dev/gpu_bundle.sh --installed      # from this machine's installed packages (no network; tests)
#   bash dev/gpu_bundle.sh --out DIR        # another folder than .gpu_bundle
#
# The folder (about 3.5 MB, git-ignored; the .deb files are not kept):
#   include/        gtest/, nlohmann/, utf8proc.h, zlib.h, zconf.h
#   lib/            libgtest.a, libutf8proc.a, libz.a: static archives only, so the programs need
#                   nothing of the bundle at run time (no LD_LIBRARY_PATH, which would also hand this
#                   machine's zlib to the GPU machine's Python)
#   src/googletest/ include/ and src/ of googletest, for a machine whose C++ library cannot link
#                   the prebuilt libgtest.a (dev/gpu_check.sh compiles it there)
#   MANIFEST        the packages and versions it came from
# Then it checks here that a program using all four libraries compiles, links and runs against
# the folder alone (dev/gpu_check_lib.sh, deps_probe), and prints the folder's size.
set -euo pipefail
cd "$(dirname "$0")/.."
. dev/gpu_check_lib.sh

PACKAGES="libgtest-dev googletest libutf8proc-dev zlib1g-dev nlohmann-json3-dev"
out=.gpu_bundle
debs=""
installed=0
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift ;;
        --debs) debs=$2; shift ;;
        --installed) installed=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_bundle: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "gpu_bundle: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/gpu_bundle.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root  # the packages' files, as dpkg would install them
mkdir -p "$root"
manifest=""
if [ "$installed" = 1 ]; then
    command -v dpkg-query >/dev/null || die "--installed needs dpkg"
    for p in $PACKAGES; do
        version=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || die "$p is not installed (apt-get install -y $p)"
        # its headers, libraries and googletest's sources (what the bundle takes), as the package holds them
        dpkg -L "$p" | grep -E '^/usr/(include|lib)/|^/usr/src/googletest/googletest/(include|src)/' |
            while read -r f; do [ -d "$f" ] || printf '%s\0' "$f"; done | xargs -0 -r cp -P --parents -t "$root"
        manifest+="$p $version (installed)"$'\n'
    done
else
    if [ -z "$debs" ]; then
        command -v apt-get >/dev/null || die "no apt-get here: fetch the packages elsewhere and use --debs DIR, or --installed"
        debs=$work/debs
        mkdir -p "$debs"
        # apt-get download writes into the current folder, as the _apt user where it can
        chmod 777 "$debs"
        (cd "$debs" && apt-get download $PACKAGES >"$work/download.txt" 2>&1) ||
            die "apt-get download failed: $(grep -m 1 -E '^(E|W):' "$work/download.txt" || tail -n 1 "$work/download.txt")"
    fi
    for p in $PACKAGES; do
        deb=""
        for f in "$debs"/*.deb; do
            [ -f "$f" ] && [ "$(dpkg-deb -f "$f" Package 2>/dev/null)" = "$p" ] && { deb=$f; break; }
        done
        [ -n "$deb" ] || die "no .deb of $p in $debs (needed: $PACKAGES)"
        dpkg-deb -x "$deb" "$root"
        manifest+="$p $(dpkg-deb -f "$deb" Version) ($(basename "$deb"), sha256 $(sha256sum "$deb" | cut -c1-16))"$'\n'
    done
fi

# The folder: headers, static archives and googletest's sources, nothing else.
arch_lib=$(dirname "$(find "$root/usr/lib" -name libutf8proc.a | head -n 1)")
new=$work/bundle
mkdir -p "$new/include" "$new/lib" "$new/src/googletest"
for f in gtest nlohmann utf8proc.h zlib.h zconf.h; do
    [ -e "$root/usr/include/$f" ] || die "the packages hold no usr/include/$f"
    cp -R "$root/usr/include/$f" "$new/include/"
done
for f in libgtest.a libutf8proc.a libz.a; do
    [ -f "$arch_lib/$f" ] || die "the packages hold no $f"
    cp "$arch_lib/$f" "$new/lib/"
done
for f in include src; do
    [ -d "$root/usr/src/googletest/googletest/$f" ] || die "the packages hold no usr/src/googletest/googletest/$f"
    cp -R "$root/usr/src/googletest/googletest/$f" "$new/src/googletest/"
done
{
    echo "# dev/gpu_bundle.sh, $(date '+%Y-%m-%d %H:%M'), on $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -sr)"
    printf '%s' "$manifest"
} >"$new/MANIFEST"

# Proof: a program using all four libraries builds here from the folder alone (the system's
# copies of the same headers and libraries are not used: deps_probe checks every path).
if ! probe=$(CPATH=$new/include LIBRARY_PATH=$new/lib deps_probe "$work/probe" "$new"); then
    printf '%s\n' "$probe" >&2
    die "the bundle does not build a program here: $(tail -n 1 <<<"$probe" | sed 's/^FAIL: //')"
fi
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -R "$new" "$out"
echo "gpu_bundle: $out: $(du -sh "$out" | cut -f1), $(find "$out" -type f | wc -l) files from $(wc -w <<<"$PACKAGES") packages; a program using them built and ran against it alone"
sed -n '2,$p' "$out/MANIFEST" | sed 's/^/  /'
