#!/bin/sh
# One-shot job for compose's "ollama" profile: pull phi4-mini and create the two preset models
# through Ollama's HTTP API (POST /api/pull, POST /api/create with from/system/parameters),
# so no Modelfile or `docker exec` is needed. Safe to run again: pulls are incremental and
# create overwrites. Exits non-zero when any step fails, so `docker compose up` shows it.
set -eu

OLLAMA="${OLLAMA_HOST:-http://ollama:11434}"
BASE_MODEL="${OLLAMA_BASE_MODEL:-phi4-mini}"

post() {
  # $1 = path, $2 = JSON body. Ollama streams status lines; with "stream": false it answers once.
  answer=$(curl --silent --show-error --fail-with-body --max-time 3600 \
    -H 'Content-Type: application/json' -d "$2" "$OLLAMA$1") || {
    echo "ollama-init: POST $1 failed: $answer" >&2
    exit 1
  }
  case "$answer" in
    *'"error"'*) echo "ollama-init: POST $1 answered an error: $answer" >&2; exit 1 ;;
  esac
  echo "ollama-init: POST $1 -> $answer"
}

echo "ollama-init: waiting for $OLLAMA"
tries=0
until curl --silent --fail --max-time 5 "$OLLAMA/api/version" >/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then echo "ollama-init: $OLLAMA did not answer in 5 minutes" >&2; exit 1; fi
  sleep 5
done

post /api/pull "{\"model\": \"$BASE_MODEL\", \"stream\": false}"

post /api/create "{\"model\": \"phi4-mini-reasoning\", \"from\": \"$BASE_MODEL\", \"stream\": false,
  \"system\": \"You are an expert reasoning assistant for mathematics, logic and code analysis. Think step by step and show your work. For mathematical problems, show each calculation.\",
  \"parameters\": {\"temperature\": 0.3, \"top_p\": 0.8}}"

post /api/create "{\"model\": \"phi4-mini-coder\", \"from\": \"$BASE_MODEL\", \"stream\": false,
  \"system\": \"You are a coding assistant who writes clean, efficient, well-documented code. Explain the approach in comments and follow the conventions of the target language.\",
  \"parameters\": {\"temperature\": 0.5, \"top_p\": 0.9}}"

echo "ollama-init: ready: $BASE_MODEL, phi4-mini-reasoning, phi4-mini-coder"
