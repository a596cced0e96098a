#!/usr/bin/env bash
# Fetch and configure the source of the installed fio, for building external ioengines.
#
# Debian ships fio without its headers, so frontends/fio/ builds against Debian's own fio
# source package, matching the installed version exactly (struct ioengine_ops and
# FIO_IOOPS_VERSION must agree with the fio binary that dlopen()s the engine).
#
# The download uses a private apt configuration that leaves the system's sources and lists
# alone: a one-line sources list with `deb-src` for the archive and suite the installed fio
# came from, and its own lists directory, both under .deps/apt/.
#
# Result: .deps/fio-<version>/ unpacked, `./configure --disable-native` run, and a stamp file
# .deps/fio-<version>/.splitxen-ready. Idempotent: with the stamp present it does nothing.
# Called by `make deps` (mk/deps.sh); run it by hand with no arguments.
# Prints the source directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

die() { echo "fio-src: $*" >&2; exit 1; }

ver=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) || die "fio is not installed (make deps)"
[ -n "$ver" ] || die "fio is not installed (make deps)"
safe_ver=${ver//:/_}                 # an epoch's colon has no place in a path
src=$top/.deps/fio-$safe_ver
stamp=$src/.splitxen-ready
if [ -f "$stamp" ]; then
  echo "fio-src: $src ready"
  echo "$src"
  exit 0
fi

command -v dpkg-source >/dev/null || die "dpkg-source missing: apt-get install dpkg-dev"

# Several builds share this checkout: one fetch at a time; whoever waited finds the stamp.
mkdir -p "$top/.deps"
exec 9>"$top/.deps/fio-src.lock"
flock 9
if [ -f "$stamp" ]; then
  echo "fio-src: $src ready"
  echo "$src"
  exit 0
fi

aptdir=$top/.deps/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/dl"
srclist=$aptdir/sources.list

# --- derive archive URI + suite + component for deb-src ---------------------------------
# First choice: where apt says the installed fio version comes from, e.g.
#   fio | 3.33-3 | http://deb.debian.org/debian bookworm/main amd64 Packages
line=$(apt-cache madison fio 2>/dev/null | awk -F' [|] ' -v v="$ver" \
         '{gsub(/^ +| +$/, "", $2)} $2 == v && $3 ~ /Packages$/ {print $3; exit}' || true)
: >"$srclist.new"
if [ -n "$line" ]; then
  uri=$(awk '{print $1}' <<<"$line")
  sc=$(awk '{print $2}' <<<"$line")          # suite/component
  suite=${sc%/*} comp=${sc##*/}
  [ "$suite" = "$sc" ] && comp=main
  echo "deb-src $uri $suite $comp" >>"$srclist.new"
else
  # Fallback: turn every enabled `deb` entry of the system's sources into `deb-src`.
  # One-line format (/etc/apt/sources.list, sources.list.d/*.list):
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -n 's/^[[:space:]]*deb[[:space:]]\+/deb-src /p' "$f" >>"$srclist.new"
  done
  # deb822 format (sources.list.d/*.sources): stanzas of Types/URIs/Suites/Components.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no")
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
            printf "deb-src %s%s %s %s\n", (sb != "" ? "[signed-by=" sb "] " : ""), u[i], s[j], comps
        types = ""; nu = ns = 0; comps = ""; sb = ""; enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "") }
      key == "types"      { types = $0 }
      key == "uris"       { nu = split($0, u, " ") }
      key == "suites"     { ns = split($0, s, " ") }
      key == "components" { comps = $0 }
      key == "signed-by"  { sb = $0 }
      key == "enabled"    { enabled = tolower($0) }
      END { flush() }' "$f" >>"$srclist.new"
  done
fi
[ -s "$srclist.new" ] || die "no deb lines found in the system's apt sources"
mv "$srclist.new" "$srclist"
echo "fio-src: private sources: $(tr '\n' ';' <"$srclist")"

aptopts=(-o "Dir::Etc::SourceList=$srclist" -o "Dir::Etc::SourceParts=/nonexistent"
         -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
         -o "Debug::NoLocking=1"
         -o "APT::Sandbox::User=root" -q)
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! ls "$aptdir/dl"/fio_*.dsc >/dev/null 2>&1; then
  $SUDO apt-get "${aptopts[@]}" update >"$aptdir/update.log" 2>&1 ||
    { cat "$aptdir/update.log" >&2; die "apt-get update (private lists) failed"; }
  (cd "$aptdir/dl" && apt-get "${aptopts[@]}" source --download-only "fio=$ver") \
    >"$aptdir/source.log" 2>&1 ||
    { cat "$aptdir/source.log" >&2; die "apt-get source fio=$ver failed"; }
fi
dsc=$(ls "$aptdir/dl"/fio_*.dsc | head -n1)

# --- unpack (Debian patches applied) and configure ----------------------------------------
rm -rf "$src" "$src.tmp"
dpkg-source -x "$dsc" "$src.tmp" >"$aptdir/unpack.log" 2>&1 ||
  { cat "$aptdir/unpack.log" >&2; die "dpkg-source -x failed"; }
# dpkg-source leaves a copy of the orig tarball beside the tree; the one in dl/ is enough.
rm -f "$top"/.deps/fio_*.orig.tar.*
(cd "$src.tmp" && ./configure --disable-native) >"$aptdir/configure.log" 2>&1 ||
  { tail -n 30 "$aptdir/configure.log" >&2; die "fio ./configure failed"; }
[ -f "$src.tmp/config-host.h" ] && [ -f "$src.tmp/ioengines.h" ] ||
  die "unpacked tree lacks config-host.h or ioengines.h"
mv "$src.tmp" "$src"
echo "$ver" >"$stamp"
echo "fio-src: $src ready"
echo "$src"
