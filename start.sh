#!/bin/sh
# Yijian (一键) start script for Linux and macOS.
#   ./start.sh            open the launcher (TUI)
#   ./start.sh COMMAND    run a launcher command, e.g. ./start.sh doctor
# It finds a Python 3.10+ (the bundled python/ first), then runs stage 0
# (python -m bootstrap), which prepares the launcher environment on the
# first start and hands over to `yijian`.
set -u

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P) || exit 9
DATA=${YIJIAN_HOME:-$ROOT}

case "$ROOT" in
  *:*)
    echo "整合包路径中含有「:」，无法使用：$ROOT" >&2
    echo "The bundle path contains ':', which cannot be used: $ROOT" >&2
    echo "请移动到不含「:」的文件夹。 Move it to a folder without ':'." >&2
    exit 9 ;;
esac

usable() {
  [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

PY=""
# The launcher environment's own interpreter: the fast path on every later start.
# (Stage 0 checks it is intact before using it, so no trial run is needed here.)
if [ -x "$DATA/env/launcher/bin/python" ]; then
  PY="$DATA/env/launcher/bin/python"
elif [ -x "$ROOT/python/bin/python3" ] && usable "$ROOT/python/bin/python3"; then
  PY="$ROOT/python/bin/python3"
else
  for cand in python3.13 python3.12 python3.11 python3.10 python3 python; do
    p=$(command -v "$cand" 2>/dev/null) || continue
    # A pyenv shim for an inactive version exists but fails to run: usable() skips it.
    if usable "$p"; then PY=$p; break; fi
  done
fi

if [ -z "$PY" ]; then
  echo "没有找到 Python 3.10 或更新的版本。请安装 Python 3.10+，或把 Python 放到 $ROOT/python/ 下。" >&2
  echo "No Python 3.10 or newer was found. Install Python 3.10+, or place one in $ROOT/python/." >&2
  exit 6
fi

# Your own PYTHONPATH/PYTHONHOME would steer every Python started from here: ours replace them below, and the
# doctor reads what they were (PYTHONPATH_SET).
YIJIAN_USER_PYTHONPATH=${PYTHONPATH-}
YIJIAN_USER_PYTHONHOME=${PYTHONHOME-}
export YIJIAN_USER_PYTHONPATH YIJIAN_USER_PYTHONHOME
unset PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE
PYTHONPATH=$ROOT
PYTHONUTF8=1
export PYTHONPATH PYTHONUTF8
exec "$PY" -s -m bootstrap "$@"
