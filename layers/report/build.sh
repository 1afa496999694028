#!/usr/bin/env bash
# Adds WeasyPrint's native libraries and fonts to a built report layer, without Docker.
#
#   layers/report/build.sh OUT_DIR      (run by `sam build` through layers/report/Makefile)
#
# OUT_DIR/lib/    the shared libraries WeasyPrint dlopens (pango, pangoft2, harfbuzz, harfbuzz-subset,
#                 fontconfig, gobject) and every library they need as ldd resolves it on this machine,
#                 minus glibc itself, which the Lambda image provides. Lambda puts /opt/lib on
#                 LD_LIBRARY_PATH (after the system directories, so a library the image has wins).
# OUT_DIR/fonts/  DejaVu fonts and fonts.conf; the function sets FONTCONFIG_PATH=/opt/fonts.
#
# The libraries come from the build machine's packages (Debian: libpango-1.0-0 libpangoft2-1.0-0
# libharfbuzz-subset0 fonts-dejavu-core, installed by .ci/system-deps). Lambda's python3.12 image
# has glibc 2.34: a library linked against newer glibc symbols is reported below, because it
# would fail to load there. Set STRICT_GLIBC=1 to make that an error.
set -euo pipefail

out=${1:?usage: build.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
lambda_glibc=${LAMBDA_GLIBC:-2.34}
font_dir=${FONT_DIR:-/usr/share/fonts/truetype/dejavu}

# The names weasyprint/text/ffi.py dlopens (its optional harfbuzz-vector is left out).
roots=(libgobject-2.0.so.0 libpango-1.0.so.0 libpangoft2-1.0.so.0 libharfbuzz.so.0
    libharfbuzz-subset.so.0 libfontconfig.so.1)
# glibc's own libraries: always in the Lambda image, and a foreign copy breaks the loader.
provided='^(ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|libnsl|libmvec)\.so'

ldconfig_bin=$(command -v ldconfig || echo /sbin/ldconfig)

find_library() {
    "$ldconfig_bin" -p | awk -v name="$1" '$1 == name && /x86-64/ { print $NF; exit }'
}

mkdir -p "$out/lib" "$out/fonts"

declare -A wanted=()
for root in "${roots[@]}"; do
    path=$(find_library "$root")
    if [ -z "$path" ]; then
        echo "build.sh: $root is not installed; install WeasyPrint's libraries (bash .ci/system-deps)" >&2
        exit 1
    fi
    wanted[$root]=$path
    while read -r soname resolved; do
        if [ "$resolved" = "not" ]; then
            echo "build.sh: $soname, needed by $root, is not found on this machine" >&2
            exit 1
        fi
        wanted[$soname]=$resolved
    done < <(ldd "$path" | awk '$2 == "=>" { print $1, $3 }')
done

for soname in "${!wanted[@]}"; do
    if [[ $soname =~ $provided ]]; then
        continue
    fi
    # -L: store the file itself under its soname, the name the loader looks for
    cp -L "${wanted[$soname]}" "$out/lib/$soname"
done

# fonts-dejavu-core's six faces: regular and bold of Sans, Sans Mono and Serif.
for face in DejaVuSans DejaVuSans-Bold DejaVuSansMono DejaVuSansMono-Bold DejaVuSerif DejaVuSerif-Bold; do
    cp "$font_dir/$face.ttf" "$out/fonts/"
done
cp "$here/fonts.conf" "$out/fonts/fonts.conf"

glibc_needed() {
    objdump -T "$1" | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2,2n -u | tail -n 1 | sed 's/^GLIBC_//'
}

# A library linked against a newer glibc than Lambda's is replaced by the same soname from an
# older Debian release (bullseye has glibc 2.31), fetched with apt into a scratch directory:
# on Debian 12, libexpat (needed by fontconfig) uses glibc 2.36's arc4random_buf.
older_release=${OLDER_DEBIAN_RELEASE:-bullseye}
replace_from_older_release() {
    local soname=$1 original=$2 package work options real
    command -v apt-get >/dev/null && command -v dpkg >/dev/null || return 1
    # by file name: with merged /usr, dpkg knows /lib/... where ldconfig says /usr/lib/...
    real=$(basename "$(readlink -f "$original")")
    package=$(dpkg -S "*/$real" 2>/dev/null | awk -F': ' -v f="/$real" 'index($2, f) { print $1; exit }' | cut -d: -f1)
    [ -n "$package" ] || return 1
    work=$(mktemp -d)
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $older_release main" \
        >"$work/sources.list"
    options=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
    if apt-get "${options[@]}" -qq update >/dev/null 2>&1 \
        && (cd "$work" && apt-get "${options[@]}" -qq download "$package/$older_release" >/dev/null 2>&1) \
        && dpkg-deb -x "$work"/*.deb "$work/root"; then
        local found
        found=$(find "$work/root" -name "$soname" | head -n 1)
        if [ -n "$found" ]; then
            cp -L "$found" "$out/lib/$soname"
            echo "build.sh: $soname taken from $package of Debian $older_release (glibc $(glibc_needed "$out/lib/$soname"))"
            rm -rf "$work"
            return 0
        fi
    fi
    rm -rf "$work"
    return 1
}

# Report the libraries that need a newer glibc than Lambda's.
if command -v objdump >/dev/null; then
    for library in "$out"/lib/*.so*; do
        needed=$(glibc_needed "$library")
        if [ -n "$needed" ] && [ "${needed#2.}" -gt "${lambda_glibc#2.}" ]; then
            soname=$(basename "$library")
            replace_from_older_release "$soname" "${wanted[$soname]}" || true
        fi
    done
    too_new=()
    for library in "$out"/lib/*.so*; do
        needed=$(glibc_needed "$library")
        if [ -n "$needed" ] && [ "${needed#2.}" -gt "${lambda_glibc#2.}" ]; then
            symbols=$(objdump -T "$library" | awk -v v="GLIBC_$needed" '$0 ~ v { print $NF }' | paste -sd, -)
            too_new+=("$(basename "$library") needs glibc $needed ($symbols)")
        fi
    done
    if [ ${#too_new[@]} -gt 0 ]; then
        for line in "${too_new[@]}"; do
            echo "build.sh: WARNING: $line; Lambda has glibc $lambda_glibc" >&2
        done
        if [ "${STRICT_GLIBC:-0}" = 1 ]; then
            exit 1
        fi
    fi
else
    echo "build.sh: objdump not found, glibc versions of the libraries not checked" >&2
fi

echo "build.sh: $(find "$out/lib" -type f | wc -l) libraries, $(find "$out/fonts" -name '*.ttf' | wc -l) fonts in $out"
