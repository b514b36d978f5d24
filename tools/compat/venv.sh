#!/usr/bin/env bash
# Creates (once) the virtual environment of one ansible-core line listed in versions.txt and
# prints its directory:  venv.sh <line>   e.g.  venv.sh 2.16
#
# The venv lives in the cache directory ($DATASTORE_K8S_CACHE) and is named after the release,
# the Python and a hash of what goes into it, so a change of pins makes a new one.
# Pythons are looked up as pythonX.Y on PATH, then under pyenv's versions directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${DATASTORE_K8S_CACHE:-$HOME/.cache/datastore-kubernetes}"
line="${1:?usage: venv.sh <ansible-core line, e.g. 2.16>}"

read -r _ release python < <(awk -v l="$line" '$1 == l {print; exit}' "$HERE/versions.txt") || true
[ -n "${release:-}" ] || { echo "venv.sh: $line is not a line of $HERE/versions.txt" >&2; exit 2; }

find_python() {
  local want="$1" candidate
  for candidate in "$(command -v "python$want" 2>/dev/null || true)" \
                   "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python"$want"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && \
       [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  echo "venv.sh: no Python $want found (pythonX.Y on PATH or pyenv's versions)" >&2
  return 1
}

hash="$(cat "$HERE/requirements.txt" "$REPO/requirements.txt" | sha256sum | cut -c1-8)"
venv="$CACHE/compat-ansible-core-$release-py$python-$hash"
if [ ! -f "$venv/.complete" ]; then
  base="$(find_python "$python")"
  rm -rf "$venv"
  "$base" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$release" \
    -r "$REPO/requirements.txt" -c "$HERE/requirements.txt" -r "$HERE/requirements.txt" >&2
  touch "$venv/.complete"
fi
printf '%s\n' "$venv"
