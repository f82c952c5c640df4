#!/usr/bin/env bash
# ansible-test sanity needs the collection at ansible_collections/NS/NAME and rejects a
# symlinked path, so it runs on a temporary copy.  Offline, its pip bootstrap cannot
# download get-pip.py: a stand-in built on ensurepip is put in ansible-test's cache.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$repo/.venv/bin/python
python_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=$(mktemp -d "${TMPDIR:-/tmp}/nestlab-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The pip version ansible-test bootstraps into its venvs, read from its own source.
pip_version=$("$python" - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
match = re.search(r"pip='([0-9.]+)'", source.read_text())
print(match.group(1) if match else "")
PY
)
get_pip=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ -n "$pip_version" ] && [ ! -s "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  cat >"$get_pip" <<'PY'
"""Offline stand-in for get-pip.py: seed pip with ensurepip, then pip install the rest."""
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}
environment = dict(os.environ)
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True,
               stdout=subprocess.DEVNULL)
arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY]
# ensurepip sets PIP_CONFIG_FILE=/dev/null for itself; pip must see the machine's config.
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *arguments],
                        env=environment, check=False).returncode)
PY
fi

target=$work/ansible_collections/nestlab/cloudlab
mkdir -p "$target"
# Only what git tracks (plus new files), so caches and the venv never reach the copy.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | grep -zv '^collections/' \
  | xargs -0 -I{} cp --parents -P {} "$target/")
cd "$target"
git init -q && git add -A
ansible-test sanity --venv --python "$python_version" --color no "$@"
