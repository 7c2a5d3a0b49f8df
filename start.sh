#!/bin/sh
# Yijian (一键) start script for Linux and macOS.
#   ./start.sh            open the launcher (TUI)
#   ./start.sh COMMAND    run a launcher command, e.g. ./start.sh doctor
# It finds a Python 3.10+ (the bundled python/ first; with none anywhere it
# downloads the pinned build into python/ through the mirrors, see
# bootstrap/fetch-python.sh), then runs stage 0 (python -m bootstrap), which
# prepares the launcher environment on the first start and hands over to `yijian`.
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

# A bundle that was moved (or unpacked from a release archive) after its environments were made from its
# own python/: their pyvenv.cfg still names the old python/bin, so point them at this one.  Shell builtins
# only on the usual path: this runs on every start.
heal_env() {
  cfg="$1/pyvenv.cfg"
  [ -f "$cfg" ] || return 0
  home=""
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      home*=*) home=${line#*=} ;;
    esac
  done <"$cfg"
  while :; do case "$home" in " "*) home=${home# } ;; *" ") home=${home% } ;; *) break ;; esac; done
  [ -n "$home" ] && [ ! -d "$home" ] && [ -x "$ROOT/python/bin/python3" ] || return 0
  case "$home" in */python/bin) ;; *) return 0 ;; esac
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      home*=*) printf 'home = %s\n' "$ROOT/python/bin" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$cfg" >"$cfg.new" && mv -f "$cfg.new" "$cfg"
}
heal_env "$DATA/env/launcher"
heal_env "$DATA/env/runtime"

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
  # No Python anywhere: fetch the pinned build into python/ (curl or wget, checked before unpacking).
  /bin/sh "$ROOT/bootstrap/fetch-python.sh" "$ROOT" "$DATA"
  rc=$?
  [ $rc -eq 0 ] && usable "$ROOT/python/bin/python3" && PY="$ROOT/python/bin/python3"
  [ $rc -eq 0 ] && rc=6
fi

if [ -z "$PY" ]; then
  echo "没有找到 Python 3.10 或更新的版本。请安装 Python 3.10+，或把 Python 放到 $ROOT/python/ 下。" >&2
  echo "No Python 3.10 or newer was found. Install Python 3.10+, or place one in $ROOT/python/." >&2
  exit "${rc:-6}"
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
