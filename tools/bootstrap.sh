#!/usr/bin/env bash
# One setup step for every Makefile target: host packages (only those missing),
# a pinned .venv, and the dependency collections unpacked from the `ansible` wheel.
# Warm re-runs only compare a stamp and exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

ANSIBLE_WHEEL_VERSION=${NESTLAB_ANSIBLE_WHEEL_VERSION:-14.5.0}
cache=${NESTLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nestlab-cloudlab}
venv=$repo/.venv
collections=$repo/collections/ansible_collections

# Debian packages the test bed and the lint/sanity layers use on the controller.
host_packages=(qemu-system-x86 qemu-utils mmdebstrap xorriso shellcheck zstd e2fsprogs openssh-client rsync
               isolinux)

log() { printf 'bootstrap: %s\n' "$*" >&2; }

# The Makefile puts .venv/bin first on PATH: without it here, a rebuild would pick the old
# venv's own python3.X, which is gone once the venv is removed.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$venv/bin" | paste -sd: -)

install_host_packages() {
  local missing=() pkg
  for pkg in "${host_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  local candidate version
  for candidate in python3.14 python3.13 python3.12 \
      "$HOME"/.pyenv/versions/3.14*/bin/python3 "$HOME"/.pyenv/versions/3.13*/bin/python3 \
      "$HOME"/.pyenv/versions/3.12*/bin/python3 /root/.pyenv/versions/3.13*/bin/python3 \
      /root/.pyenv/versions/3.12*/bin/python3; do
    # pyenv shims exist for versions that are not active: ask the interpreter itself.
    version=$("$candidate" -c 'import sys; print("%d%02d" % sys.version_info[:2])' 2>/dev/null) || continue
    if [ "$version" -ge 312 ]; then echo "$candidate requirements.txt"; return 0; fi
  done
  log "WARNING: no Python >= 3.12 found; falling back to python3 with ansible-core 2.19"
  echo "python3 requirements-py311.txt"
}

recipe_stamp() {
  cat requirements.txt requirements-py311.txt tools/collections.txt tools/bootstrap.sh \
    | sha256sum | cut -c1-16
  echo "$ANSIBLE_WHEEL_VERSION"
}

install_venv() {
  local choice python requirements
  choice=$(pick_python)
  python=${choice% *} requirements=${choice##* }
  log "creating .venv with $("$python" --version) from $requirements"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/ansible" --version >/dev/null
}

install_collections() {
  local wheel_dir=$cache/wheels wheel name
  wheel=$wheel_dir/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl
  if [ ! -s "$wheel" ]; then
    mkdir -p "$wheel_dir"
    log "downloading the ansible $ANSIBLE_WHEEL_VERSION wheel for its collections"
    "$venv/bin/pip" download -q --disable-pip-version-check --no-deps \
      "ansible==$ANSIBLE_WHEEL_VERSION" -d "$wheel_dir" 2>&1 | grep -v '^WARNING: Location' || true
    [ -s "$wheel" ] || { log "ERROR: could not download ansible==$ANSIBLE_WHEEL_VERSION from PyPI"; exit 1; }
  fi
  local patterns=()
  while read -r name; do
    case "$name" in ''|'#'*) continue ;; esac
    rm -rf "${collections:?}/$name"
    patterns+=("ansible_collections/$name/*")
  done < tools/collections.txt
  "$venv/bin/python" - "$wheel" "$repo/collections" "${patterns[@]}" <<'PY'
import fnmatch, sys, zipfile
wheel, target, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if any(fnmatch.fnmatch(m, p) for p in patterns)]
    archive.extractall(target, members)
PY
}

install_host_packages
stamp_file=$venv/.nestlab-stamp
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(recipe_stamp)" ] \
    && [ -x "$venv/bin/ansible-playbook" ] && [ -d "$collections/community/general" ]; then
  exit 0
fi
install_venv
install_collections
recipe_stamp >"$stamp_file"
log "ready: $("$venv/bin/ansible" --version | head -1)"
