#!/bin/sh
# Fetch the pinned Python into ROOT/python/ with curl or wget: the first start on a machine with no Python.
#
#   /bin/sh bootstrap/fetch-python.sh ROOT [DATA]
#
# What:  the build for this system in ROOT/bootstrap/python-builds.toml (file, size, sha256).
# Where: the `python` channel of ROOT/mirrors.toml (entries of the build's kind), in the order
#        [mirrors] python in DATA/config.toml chooses: a mirror id or URL first, then every mirror
#        that is not "unverified", in catalog order.  [network] proxy and offline are honoured.
# How:   into DATA/cache/python/FILE.part, resumed (curl -C - / wget -c) across attempts, runs and
#        mirrors; the size (when recorded) and the sha256 are checked BEFORE anything is unpacked;
#        the build is unpacked beside python/, run once, then moved in.
# Exit:  0 ready; 4 no mirror could be reached (or offline); 5 a download did not verify;
#        6 nothing can be fetched here (no build for this system, no curl/wget, no sha256 tool).
set -u

ROOT=$1
DATA=${2:-$1}
BUILDS=$ROOT/bootstrap/python-builds.toml
CATALOG=$ROOT/mirrors.toml
CONFIG=$DATA/config.toml
CACHE=$DATA/cache/python
TAB=$(printf '\t')

say() { printf '%s\n' "$*" >&2; }

MISSING=""
for tool in uname awk sed tar gzip wc mkdir rm mv; do
  command -v "$tool" >/dev/null 2>&1 || MISSING="$MISSING $tool"
done
if [ -n "$MISSING" ]; then
  say "无法自动下载 Python：缺少这些命令：$MISSING"
  say "Cannot download a Python automatically: these commands are missing:$MISSING"
  exit 6
fi

# Shared by the awk programs: the value of a `key = value` line (a "string", or a bare word/number).
AWK_VAL='function val(s) {
  sub(/^[^=]*=[ \t]*/, "", s)
  if (s ~ /^"/) { s = substr(s, 2); sub(/".*$/, "", s); return s }
  sub(/[ \t]*#.*$/, "", s); sub(/[ \t]+$/, "", s); return s
}'

# cfg_get SECTION KEY: a value from config.toml ("" when absent).
cfg_get() {
  [ -f "$CONFIG" ] || return 0
  awk -v sec="$1" -v key="$2" "$AWK_VAL"'
    /^[ \t]*\[/ { s = $0; sub(/#.*$/, "", s); gsub(/[][ \t]/, "", s); cur = s; next }
    cur == sec && $0 ~ ("^[ \t]*\"?" key "\"?[ \t]*=") { print val($0); exit }' "$CONFIG"
}

LANG_PICK=$(cfg_get general language)
[ "$LANG_PICK" = auto ] && LANG_PICK=""  # auto: the locale decides
case "${LANG_PICK:-${YIJIAN_LANG:-${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}}}" in
  zh*) L=zh ;;
  *) L=en ;;
esac
# t ZH EN: one line in the user's language.
t() { if [ "$L" = zh ]; then say "$1"; else say "$2"; fi; }

case "$(uname -s 2>/dev/null)/$(uname -m 2>/dev/null)" in
  Linux/x86_64 | Linux/amd64) TARGET=linux-x64 ;;
  Linux/aarch64 | Linux/arm64) TARGET=linux-arm64 ;;
  Darwin/x86_64) TARGET=macos-x64 ;;
  Darwin/arm64 | Darwin/aarch64) TARGET=macos-arm64 ;;
  *) TARGET="" ;;
esac

BUILD=""
if [ -n "$TARGET" ] && [ -f "$BUILDS" ]; then
  BUILD=$(awk -v want="$TARGET" "$AWK_VAL"'
    function flush() {
      if (inb && tg == want && fl != "") print fl "\t" (sz == "" ? 0 : sz) "\t" h "\t" rel "\t" ver "\t" k
      inb = 0; tg = fl = sz = h = rel = ver = k = ""
    }
    /^[ \t]*\[\[build\]\]/ { flush(); inb = 1; next }
    /^[ \t]*\[/ { flush(); next }
    inb && /^[ \t]*target[ \t]*=/ { tg = val($0) }
    inb && /^[ \t]*file[ \t]*=/ { fl = val($0) }
    inb && /^[ \t]*size[ \t]*=/ { sz = val($0) }
    inb && /^[ \t]*sha256[ \t]*=/ { h = tolower(val($0)) }
    inb && /^[ \t]*release[ \t]*=/ { rel = val($0) }
    inb && /^[ \t]*version[ \t]*=/ { ver = val($0) }
    inb && /^[ \t]*kind[ \t]*=/ { k = val($0) }
    END { flush() }' "$BUILDS")
fi
if [ -z "$BUILD" ]; then
  say "没有适用于这个系统（$(uname -s 2>/dev/null) $(uname -m 2>/dev/null)）的 Python 安装包可以下载。请安装 Python 3.10+，或把 Python 放到 $ROOT/python/ 下。"
  say "No Python build is pinned for this system ($(uname -s 2>/dev/null) $(uname -m 2>/dev/null)). Install Python 3.10+, or place one in $ROOT/python/."
  exit 6
fi
IFS=$TAB read -r FILE SIZE SHA RELEASE VERSION KIND <<EOF
$BUILD
EOF
SIZE=$((SIZE + 0))
FINAL=$CACHE/$FILE
PART=$FINAL.part

manual_help() {
  say "手动放置 Python：在能上网的电脑上从上面任一镜像下载 $FILE（sha256 $SHA），放到 $CACHE/ 下，再运行一次 ./start.sh（先校验再解压）；或者把任意 Python 3.10+ 安装或解压到 $ROOT/python/，使 $ROOT/python/bin/python3 可以运行。"
  say "To place a Python by hand: on a machine with internet access download $FILE (sha256 $SHA) from any mirror above, put it in $CACHE/ and run ./start.sh again (it is verified, then unpacked); or install or unpack any Python 3.10+ into $ROOT/python/ so that $ROOT/python/bin/python3 runs."
}

if command -v sha256sum >/dev/null 2>&1; then SHATOOL=sha256sum
elif command -v shasum >/dev/null 2>&1; then SHATOOL=shasum
elif command -v openssl >/dev/null 2>&1; then SHATOOL=openssl
else
  say "无法校验下载的 Python：找不到 sha256sum、shasum 或 openssl。"
  say "Cannot verify a downloaded Python: none of sha256sum, shasum or openssl is installed."
  manual_help
  exit 6
fi
sha_of() {
  case $SHATOOL in
    sha256sum) h=$(sha256sum <"$1") ;;
    shasum) h=$(shasum -a 256 <"$1") ;;
    *) h=$(openssl dgst -sha256 <"$1"); h=${h##* } ;;
  esac
  printf '%s\n' "${h%% *}"
}
size_of() { if [ -f "$1" ]; then n=$(wc -c <"$1"); echo $((n)); else echo 0; fi; }
# verifies FILE: size (when recorded) and sha256 match the pin.
verifies() {
  [ -f "$1" ] || return 1
  if [ "$SIZE" -gt 0 ] && [ "$(size_of "$1")" -ne "$SIZE" ]; then return 1; fi
  [ "$(sha_of "$1")" = "$SHA" ]
}

if command -v curl >/dev/null 2>&1; then FETCHER=curl
elif command -v wget >/dev/null 2>&1; then FETCHER=wget
else FETCHER=""
fi

# The mirrors to try, one "id<TAB>url" per line: the choice in config.toml first, then `auto`'s.
CATALOG_LINES=$(awk -v kind="$KIND" "$AWK_VAL"'
  function flush() { if (inp && k == kind && u != "") print id "\t" u "\t" st; inp = 0; id = u = k = st = "" }
  /^[ \t]*\[\[python\]\]/ { flush(); inp = 1; next }
  /^[ \t]*\[/ { flush(); next }
  inp && /^[ \t]*id[ \t]*=/ { id = val($0) }
  inp && /^[ \t]*url[ \t]*=/ { u = val($0) }
  inp && /^[ \t]*kind[ \t]*=/ { k = val($0) }
  inp && /^[ \t]*status[ \t]*=/ { st = val($0) }
  END { flush() }' "$CATALOG" 2>/dev/null)
CHOICE=$(cfg_get mirrors python)
SOURCES=""
add_source() {
  case "$SOURCES" in *"$TAB$2
"*) return 0 ;; esac
  SOURCES="$SOURCES$1$TAB$2
"
}
case "${CHOICE:-auto}" in
  auto) ;;
  http://* | https://*) add_source custom "$CHOICE" ;;
  *)
    while IFS=$TAB read -r id url st; do
      [ "$id" = "$CHOICE" ] && add_source "$id" "$url"
    done <<EOF
$CATALOG_LINES
EOF
    ;;
esac
while IFS=$TAB read -r id url st; do
  [ -n "$id" ] && [ "$st" != unverified ] && add_source "$id" "$url"
done <<EOF
$CATALOG_LINES
EOF

PROXY=$(cfg_get network proxy)
if [ -n "$PROXY" ]; then
  http_proxy=$PROXY https_proxy=$PROXY HTTP_PROXY=$PROXY HTTPS_PROXY=$PROXY
  export http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
fi

mkdir -p "$CACHE" "$DATA/logs" || exit 9
LOG=$DATA/logs/python-fetch.log

# fetch URL: one attempt at PART (resumed when it has bytes); sets RC and REASON.
fetch() {
  REASON=""
  printf '\n%s %s\n' "$FETCHER" "$1" >>"$LOG"
  if [ "$FETCHER" = curl ]; then
    if [ -t 2 ]; then
      code=$(curl -fL -C - --connect-timeout 15 --speed-limit 1024 --speed-time 60 --progress-bar \
        -w '%{http_code}' -o "$PART" "$1")
    else
      code=$(curl -fsSL -C - --connect-timeout 15 --speed-limit 1024 --speed-time 60 \
        -w '%{http_code}' -o "$PART" "$1" 2>>"$LOG")
    fi
    RC=$?
    case $RC in
      0) ;;
      6) REASON="DNS lookup failed" ;;
      7) REASON="connection refused" ;;
      22) REASON="HTTP $code" ;;
      28) REASON="timed out" ;;
      18 | 56) REASON="connection dropped" ;;
      33) REASON="the server does not resume downloads" ;;
      35 | 51 | 58 | 60) REASON="TLS error" ;;
      *) REASON="curl exit $RC" ;;
    esac
  else
    if [ -t 2 ]; then wget -c -T 30 -t 1 -O "$PART" "$1"; else wget -c -q -T 30 -t 1 -O "$PART" "$1" 2>>"$LOG"; fi
    RC=$?
    case $RC in
      0) ;;
      4) REASON="network failure" ;;
      5) REASON="TLS error" ;;
      8) REASON="the server answered with an error" ;;
      *) REASON="wget exit $RC" ;;
    esac
  fi
}

TRIED=""
MISMATCH=0
if verifies "$FINAL"; then
  t "使用已下载并校验过的 $FILE" "Using the already downloaded and verified $FILE"
else
  rm -f "$FINAL"
  if [ "$(cfg_get network offline)" = true ]; then
    say "config.toml 设置了离线模式（[network] offline = true），不会下载 Python $VERSION。"
    say "config.toml sets offline mode ([network] offline = true): Python $VERSION is not downloaded."
    manual_help
    exit 4
  fi
  if [ -z "$FETCHER" ]; then
    say "下载 Python 需要 curl 或 wget，这两个都没有找到。"
    say "Downloading Python needs curl or wget; neither was found."
    manual_help
    exit 6
  fi
  t "没有找到 Python 3.10+：正在通过镜像下载 Python $VERSION（$TARGET）到 python/ …" \
    "No Python 3.10+ found: downloading Python $VERSION ($TARGET) into python/ through the mirrors ..."
  while IFS=$TAB read -r id base; do
    [ -n "$id" ] || continue
    case $KIND in
      embed) url=$(printf '%s' "$base" | sed "s/{version}/$VERSION/g") ;;
      *) url="${base%/}/$RELEASE/$(printf '%s' "$FILE" | sed 's/+/%2B/g')" ;;
    esac
    t "从 $id 下载：$url" "Downloading from $id: $url"
    tries=0
    while :; do
      tries=$((tries + 1))
      before=$(size_of "$PART")
      fetch "$url"
      if verifies "$PART"; then
        mv -f "$PART" "$FINAL"
        break 2
      fi
      after=$(size_of "$PART")
      if [ "$RC" -eq 0 ] || { [ "$SIZE" -gt 0 ] && [ "$after" -ge "$SIZE" ]; }; then
        # Complete, yet not the pinned file: never unpack it, and start clean on the next mirror.
        got=$(sha_of "$PART")
        want=$SIZE; [ "$want" -gt 0 ] || want="?"
        REASON="size $after / sha256 $got, expected $want / $SHA"
        t "$id 提供的文件校验失败（$REASON），已删除" "The file from $id does not verify ($REASON); deleted"
        rm -f "$PART"
        MISMATCH=1
        break
      fi
      if [ "$after" -gt "$before" ] && [ "$tries" -lt 4 ]; then
        t "下载中断（$REASON），从第 $after 字节继续…" "The download was cut ($REASON); resuming at byte $after ..."
        continue
      fi
      if [ "$RC" -eq 33 ] && [ "$tries" -lt 2 ]; then
        rm -f "$PART"
        continue
      fi
      t "$id 失败（$REASON）" "$id failed ($REASON)"
      break
    done
    TRIED="$TRIED
  - $id ($url): $REASON"
  done <<EOF
$SOURCES
EOF
  if ! [ -f "$FINAL" ]; then
    say "[PYTHON_FETCH_FAILED] 无法下载 Python $VERSION（$TARGET）。已尝试的镜像：${TRIED:-（mirrors.toml 中没有可用的 python 镜像）}"
    say "[PYTHON_FETCH_FAILED] Could not download Python $VERSION ($TARGET). Mirrors tried:${TRIED:- none (no usable python mirror in mirrors.toml)}"
    say "请检查网络或代理（config.toml 的 [network] proxy），或在 [mirrors] python 中换一个镜像。详细记录：$LOG"
    say "Check the network or the proxy ([network] proxy in config.toml), or choose another mirror as [mirrors] python. Details: $LOG"
    manual_help
    [ "$MISMATCH" -eq 1 ] && exit 5
    exit 4
  fi
fi

# Unpack beside python/, check it runs, then move it in (python/ may already hold python/uv).
INCOMING=$ROOT/python.incoming
rm -rf "$INCOMING"
mkdir -p "$INCOMING" || exit 9
if ! tar -xzf "$FINAL" -C "$INCOMING" 2>>"$LOG"; then
  rm -rf "$INCOMING"
  say "解压 $FINAL 失败（磁盘空间不足？）。详细记录：$LOG"
  say "Unpacking $FINAL failed (is the disk full?). Details: $LOG"
  exit 6
fi
NEW=$INCOMING/python/bin/python3
if ! "$NEW" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >>"$LOG" 2>&1; then
  rm -rf "$INCOMING"
  say "下载的 Python 无法在这台电脑上运行：$FILE。详细记录：$LOG"
  say "The downloaded Python does not run on this machine: $FILE. Details: $LOG"
  manual_help
  exit 6
fi
mkdir -p "$ROOT/python" || exit 9
for entry in "$INCOMING/python/"* "$INCOMING/python/".[!.]*; do
  [ -e "$entry" ] || continue
  name=${entry##*/}
  rm -rf "$ROOT/python/$name"
  mv "$entry" "$ROOT/python/$name" || exit 9
done
rm -rf "$INCOMING"
t "Python $VERSION 已就绪：$ROOT/python" "Python $VERSION is ready: $ROOT/python"
exit 0
