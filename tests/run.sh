#!/usr/bin/env bash
# The one test command.  On a fresh clone it sets up everything the suite
# needs, then runs all of it:
#   1. system tools: Chromium (browser tests), tmux (terminal tests) and
#      aria2 (the download benchmark) and a CJK font (screenshots), through
#      apt-get when run as root;
#   2. the dev environment .venv: torch (CPU) first, then requirements/dev.txt,
#      installed with uv; skipped when the requirement files are unchanged;
#   3. ruff, mypy, and pytest over tests/.
# Extra arguments go to pytest: ./tests/run.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# 1. System tools.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v aria2c >/dev/null 2>&1 || missing+=(aria2)
# A CJK font, so Chromium's screenshots of the Chinese UI show characters, not boxes.
fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || missing+=(fonts-wqy-microhei)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing ${missing[*]} (not root): the tests that need them will be skipped with a reason"
  fi
fi

# 2. The dev environment.
PY=""
for cand in python3.11 python3.12 python3.13 python3.10 python3; do
  p=$(command -v "$cand" 2>/dev/null) || continue
  if "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "No Python 3.10+ found." >&2; exit 6; }

want=$(cat requirements/dev.txt requirements/launcher.txt packs/cpu.toml packs/runtime.txt tests/run.sh | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.yijian-dev-stamp 2>/dev/null)" != "$want" ]; then
  say "preparing .venv with $PY"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --isolated --disable-pip-version-check "uv==0.13.9"
  # The dev environment is the CPU pack's: the same torch (packs/cpu.toml) and runtime pins (packs/runtime.txt),
  # so tests can stand it in for env/runtime.  torch from a local wheel folder named by PIP_FIND_LINKS when it
  # holds that build, else from PyTorch's CPU index.
  torch_pin=$(sed -n 's/^torch *= *"\([^"]*\)".*/\1/p' packs/cpu.toml | head -n 1)
  wheel=$(ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-"$torch_pin"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ]; then
    .venv/bin/uv pip install -q --no-config -p .venv "$wheel"
  else
    .venv/bin/uv pip install -q --no-config -p .venv --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple "torch==$torch_pin"
  fi
  printf 'torch==%s\n' "$torch_pin" > .venv/torch-pin.txt
  .venv/bin/uv pip install -q --no-config -p .venv -c .venv/torch-pin.txt -c packs/runtime.txt -r requirements/dev.txt
  # Byte-compile once: every runtime child the tests start then loads gradio/diffusers from .pyc, even where
  # PYTHONDONTWRITEBYTECODE is set (about 10 s saved per start here).
  .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true
  echo "$want" > .venv/.yijian-dev-stamp
fi

# 3. Lint, types, tests.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE TOKENIZERS_PARALLELISM=false
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 TEXTUAL_ANIMATIONS=none
unset NO_COLOR || true
say "ruff"
.venv/bin/ruff check bootstrap launcher runtime tests
say "mypy"
.venv/bin/mypy
say "pytest"
exec .venv/bin/python -m pytest "$@"
