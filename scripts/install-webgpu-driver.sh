#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa's lavapipe) so that Dawn, the WebGPU implementation of
# the `webgpu` npm package, finds an adapter on machines without a GPU (CI, containers).
#
# - Does nothing when lavapipe from Mesa >= 24 is already installed (Dawn refuses older ones:
#   Debian bookworm's own Mesa 22 is too old).
# - On Debian bookworm it adds `bookworm-backports` (same mirror and keyring as the machine's
#   existing Debian source, deb822 or one-line format) and installs mesa-vulkan-drivers and
#   libvulkan1 from there. On newer Debian/Ubuntu releases the default archive's Mesa is used when
#   it is new enough.
# - Skips (exit 0, with a message) on systems without apt/dpkg (macOS, Windows, other Linux):
#   install a GPU driver there instead. On Debian any failure is a failure (non-zero exit).
#
# Quiet on success; on failure prints apt's output and the reason. Needs root (or sudo) only when
# it has to install something. Idempotent: run it as often as you like.
set -euo pipefail

MIN_MESA=24
PKGS=(mesa-vulkan-drivers libvulkan1)

say() { echo "install-webgpu-driver: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- Not a Debian-family system: nothing we can install. -------------------------------------
if [[ "$(uname -s)" != Linux ]] || ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "skipped: not a Debian/Ubuntu system ($(uname -s)); WebGPU needs a GPU driver with Vulkan, Metal or D3D12 support (on Linux without a GPU: Mesa >= $MIN_MESA's lavapipe)."
  exit 0
fi

# --- Already installed? ----------------------------------------------------------------------
installed_version() { # prints the installed version of package $1, or nothing
  dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "installed" { print $2 }' | head -n1
}
lavapipe_ok() {
  local v
  v="$(installed_version mesa-vulkan-drivers)"
  [[ -n "$v" ]] && dpkg --compare-versions "$v" ge "$MIN_MESA~" || return 1
  [[ -n "$(installed_version libvulkan1)" ]] || return 1
  compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null
}
if lavapipe_ok; then
  exit 0
fi

# --- Install. ---------------------------------------------------------------------------------
SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "Mesa >= $MIN_MESA's lavapipe is not installed and installing it needs root: run this script as root (or install sudo)."
  SUDO=(sudo)
fi

LOG="$(mktemp "${TMPDIR:-/tmp}/install-webgpu-driver.XXXXXX.log")"
trap 'rm -f "$LOG"' EXIT
run() { # runs a command with its output in $LOG; on failure prints the log and stops
  if ! "$@" >>"$LOG" 2>&1; then
    cat "$LOG" >&2
    die "'$*' failed (output above)."
  fi
}

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y --no-install-recommends -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-unsafe-io
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

codename=""
if [[ -r /etc/os-release ]]; then
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
fi

TARGET=()
if [[ "$codename" == bookworm ]]; then
  TARGET=(-t bookworm-backports)
  # The mirror of the existing Debian archive source (the one serving `bookworm`), in whichever
  # format the machine uses. Prints "<format> <uri> <signed-by or one-line options>".
  find_mirror() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
      # deb822: stanzas separated by blank lines.
      awk -v file="$f" '
        function flush() {
          if (types ~ /(^|[ \t])deb([ \t]|$)/ && (" " suites " ") ~ /[ \t]bookworm[ \t]/ && enabled !~ /^[ \t]*no/ && uri != "")
            { print "sources", uri, signed; found = 1; exit }
          types = ""; suites = ""; uri = ""; signed = ""; enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        tolower($1) == "types:"     { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
        tolower($1) == "suites:"    { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
        tolower($1) == "uris:"      { uri = $2 }
        tolower($1) == "signed-by:" { sub(/^[^:]*:[ \t]*/, ""); signed = $0 }
        tolower($1) == "enabled:"   { sub(/^[^:]*:[ \t]*/, ""); enabled = $0 }
        END { if (!found) flush() }
      ' "$f" | head -n1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -r "$f" ]] || continue
      # one-line: deb [options] uri suite components...
      awk '
        /^[ \t]*deb[ \t]/ {
          opts = ""; i = 2
          if ($2 ~ /^\[/) { opts = $2; while ($i !~ /\]$/ && i < NF) { i++; opts = opts " " $i }; i++ }
          if ($(i + 1) == "bookworm") { print "list", $i, opts; exit }
        }
      ' "$f" | head -n1
    done
  }
  mirror_line="$(find_mirror | head -n1)"
  [[ -n "$mirror_line" ]] || die "no apt source for Debian 'bookworm' found in /etc/apt/sources.list or /etc/apt/sources.list.d/; cannot add bookworm-backports."
  read -r fmt uri extra <<<"$mirror_line"

  # Already configured (by us or by the machine)? apt-cache policy lists the release once updated,
  # so look in the source files instead.
  if ! grep -rqsE '(^|[[:space:]])bookworm-backports([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    if [[ "$fmt" == sources ]]; then
      src=/etc/apt/sources.list.d/kiln-bookworm-backports.sources
      {
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: bookworm-backports"
        echo "Components: main"
        [[ -n "$extra" ]] && echo "Signed-By: $extra"
      } | "${SUDO[@]}" tee "$src" >/dev/null || die "cannot write $src"
    else
      src=/etc/apt/sources.list.d/kiln-bookworm-backports.list
      echo "deb ${extra:+$extra }$uri bookworm-backports main" | "${SUDO[@]}" tee "$src" >/dev/null || die "cannot write $src"
    fi
  fi
fi

run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update -o Acquire::Languages=none
if [[ ${#TARGET[@]} -eq 0 ]]; then
  # Not bookworm: the release's own Mesa must be new enough.
  cand="$(apt-cache policy mesa-vulkan-drivers 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  if [[ -z "$cand" || "$cand" == "(none)" ]] || ! dpkg --compare-versions "$cand" ge "$MIN_MESA~"; then
    die "this release (${codename:-unknown}) offers mesa-vulkan-drivers '${cand:-none}', but WebGPU (Dawn) needs Mesa >= $MIN_MESA; install a newer Mesa or a GPU driver."
  fi
fi
run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${TARGET[@]}" "${PKGS[@]}"

lavapipe_ok || die "installed ${PKGS[*]}, but lavapipe from Mesa >= $MIN_MESA is still missing (mesa-vulkan-drivers is '$(installed_version mesa-vulkan-drivers)')."
