#!/usr/bin/env bash
# Idempotent set-up for memxbar on a Debian machine.
#   1. Debian packages: ngspice, libngspice0 (apt-get, as root)
#   2. a virtual environment in .venv
#   3. torch==2.13.0 (CPU build available locally; an unpinned torch would pull a CUDA build)
#   4. memxbar itself, editable, with its test extras
# Re-running on a set-up machine only checks stamps and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(ngspice libngspice0)
VENV=${MEMXBAR_VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC="torch==2.13.0"

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "[setup] installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] ERROR: missing Debian packages: ${missing[*]}" >&2
    echo "[setup] install them as root:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.memxbar-installed"
want="$(cat pyproject.toml tools/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[setup] installing Python packages into $VENV"
quiet() {  # pip's notes about local wheel folders and editable builds are noise here
  "$@" 2>&1 | { grep -v -e "WARNING: Location" -e "BuildBackendWarning" -e "^ *!!" -e "^ *\*\*\*" \
    -e "Please be careful" -e "name as your package" -e "with strategy" -e "^ *$" || true; }
}
quiet "$VENV/bin/python" -m pip install -q --upgrade pip
quiet "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
quiet "$VENV/bin/python" -m pip install -q -e ".[test]"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "$want" > "$stamp"
echo "[setup] done"
