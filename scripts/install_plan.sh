#!/usr/bin/env bash
# What would the README's commands install on a plain machine that reaches only PyPI (no pip config,
# no PIP_* variables, no local wheels)? For each of `bash scripts/dev.sh run` and `... test`:
# runs dev.sh with stubs for pip, `python -m pip`, apt-get and the tools it calls, which record the
# commands; replays every `pip install` as `pip install --dry-run --ignore-installed --report`;
# prints the packages each would install, then a last line "N packages, M CUDA (...)".
# Exits 1 when any CUDA package (nvidia-*, cuda-*, triton) would be installed, 2 when a command
# cannot be resolved at all.
#
#   bash scripts/install_plan.sh            # both commands
#   bash scripts/install_plan.sh test       # one
#
# torch==2.13.0+cpu is only on the PyTorch CPU index. dev.sh installs it first and the later
# commands find it installed; dry runs ignore what is installed, so every dry run is given that
# index. Where the index is unreachable (an offline mirror of PyPI), TORCH_WHEELS names a folder
# holding that wheel instead, and the output says so.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=(run test)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stubs="$work/venv/bin"
mkdir -p "$stubs"
log="$work/commands.log"
: > "$log"

# pip and `python -m pip` record their arguments; `python -c ...` (dev.sh's import checks) runs
# a Python without the project, so "not installed yet" holds as on a fresh machine.
cat > "$stubs/pip" <<EOF
#!/bin/sh
echo "pip \$*" >> "$log"
EOF
cat > "$stubs/python" <<EOF
#!/bin/sh
if [ "\$1" = "-m" ] && [ "\$2" = "pip" ]; then shift 2; echo "pip \$*" >> "$log"; exit 0; fi
exec python3 -I "\$@"
EOF
cat > "$stubs/apt-get" <<EOF
#!/bin/sh
echo "apt-get \$*" >> "$log"
EOF
for tool in slm-playground ruff mypy pytest; do printf '#!/bin/sh\nexit 0\n' > "$stubs/$tool"; done
printf '#!/bin/sh\nexec "$@"\n' > "$stubs/sudo"
chmod +x "$stubs"/*

python3 -m venv "$work/real"
# a plain machine: no pip configuration file and none of the PIP_* variables (but the CA bundle)
clean_env=(env)
for var in $(compgen -e | grep '^PIP_' | grep -v '^PIP_CERT$' || true); do clean_env+=(-u "$var"); done
clean_env+=(PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1)

if curl -sfI --max-time 10 "$TORCH_CPU_INDEX/torch/" >/dev/null 2>&1; then
  torch_source=(--extra-index-url "$TORCH_CPU_INDEX")
  echo "torch: from $TORCH_CPU_INDEX"
elif [ -n "${TORCH_WHEELS:-}" ] && ls "$TORCH_WHEELS"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  torch_source=(--find-links "$TORCH_WHEELS")
  echo "torch: $TORCH_CPU_INDEX is unreachable here; its wheel torch==2.13.0+cpu taken from $TORCH_WHEELS"
else
  echo "error: $TORCH_CPU_INDEX is unreachable; set TORCH_WHEELS to a folder with torch 2.13.0+cpu" >&2
  exit 2
fi

total="$work/all.txt"
: > "$total"
failed=0
for command in "${commands[@]}"; do
  : > "$log"
  VENV="$work/venv" PATH="$stubs:$PATH" timeout 120 bash scripts/dev.sh "$command" >/dev/null 2>&1 || true
  [ -s "$log" ] || { echo "dev.sh $command ran no pip command that could be recorded" >&2; exit 2; }
  echo "== dev.sh $command"
  grep '^apt-get' "$log" | sed 's/^/  (system) /' || true
  n=0
  while IFS= read -r line; do
    case "$line" in "pip install"*) ;; *) continue ;; esac
    n=$((n + 1))
    # the dry run itself: -q dropped, the CPU index stand-in swapped in where it is unreachable
    read -r -a args <<< "$(echo "${line#pip install }" | sed -E "s/(^| )-q( |$)/ /g; s#--extra-index-url $TORCH_CPU_INDEX##")"
    if ! "${clean_env[@]}" "$work/real/bin/pip" install --dry-run --ignore-installed --quiet \
      --report "$work/report.json" "${torch_source[@]}" "${args[@]}" < /dev/null 2> "$work/err.txt"; then
      echo "  dry run failed: pip install ${args[*]}: $(grep -v '^WARNING' "$work/err.txt" | tail -1)"
      failed=1
      continue
    fi
    python3 - "$work/report.json" "$line" >> "$total" <<'EOF'
import json, sys
names = sorted(item["metadata"]["name"].lower() for item in json.load(open(sys.argv[1]))["install"])
print(f"  {sys.argv[2]}\n    -> {len(names)}: {' '.join(names)}", file=sys.stderr)
print("\n".join(names))
EOF
  done < "$log"
  echo "  $n pip install commands"
done 2>&1

names=$(sort -u "$total")
cuda=$(echo "$names" | grep -E '^(nvidia-|cuda-|triton$)' | tr '\n' ' ' || true)
echo "$(echo "$names" | grep -c .) packages for dev.sh ${commands[*]} on a plain PyPI machine," \
  "$(echo $cuda | wc -w) CUDA${cuda:+ ($cuda)}" | cut -c1-300
[ -z "$cuda" ] || exit 1
exit $((failed * 2))
