#!/usr/bin/env bash
# The test suite on aarch64, emulated: QEMU user mode runs Debian's arm64 Python 3.11 and
# TensorFlow's aarch64 wheel on an x86-64 Debian 12 host. Slow (the quick subset takes about an
# hour on 2 cores) and so not part of .ci/run; see docs/setup.md ("ARM").
#
#   scripts/test_aarch64.sh                              # the quick subset (-m "not slow" -n 2 --dist loadfile)
#   scripts/test_aarch64.sh tests/test_golden.py -q      # any pytest arguments
#   scripts/test_aarch64.sh --run echo-rnn train --epochs 2   # any command inside the emulated venv
#
# Every step is done once and skipped when its result is there, so a second call only copies the
# checkout again and runs. Needs root on the first call (apt-get), Debian's package mirror and PyPI.
# No binfmt handler is registered and no arm64 package is installed on the host: the arm64 .debs are
# only downloaded and unpacked into a sysroot, and the emulated Python is started through a wrapper
# script (so that sys.executable, and with it every subprocess the tests start, is emulated too).
#
# ECHO_RNN_ARM      scratch folder for the sysroot, the venv and the copy (default ~/.cache/echo-rnn-aarch64; ~3 GB)
# ECHO_RNN_ARM_PIP  extra `pip install` arguments, e.g. "-c constraints.txt" to match an x86 venv's versions
# ECHO_RNN_ARM_COPY another folder for the checkout's copy, so that a second run can start while one is
#                   going on (it is put first on PYTHONPATH; the venv's editable install stays the first's)
set -euo pipefail

PROJECT=$(cd "$(dirname "$0")/.." && pwd)
ARM=${ECHO_RNN_ARM:-$HOME/.cache/echo-rnn-aarch64}
QEMU=/usr/bin/qemu-aarch64-static
ROOT=$ARM/root
VENV=$ARM/venv
COPY=${ECHO_RNN_ARM_COPY:-$ARM/echo-rnn}
# Debian 12's arm64 Python 3.11 and what it loads (libmpdec is bundled in bookworm's python3.11).
DEBS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3.11 libpython3.11 python3.11-venv
  libc6 libexpat1 zlib1g libssl3 libffi8 libstdc++6 libgcc-s1 libbz2-1.0 liblzma5 libsqlite3-0 libuuid1
  libncursesw6 libtinfo6 libreadline8 libdb5.3 libgdbm6 libnsl2 libtirpc3 libcrypt1 libgomp1 libatomic1
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1"
ALL_ARCH_DEBS="python3-pip-whl python3-setuptools-whl media-types ca-certificates"

say() { printf 'test_aarch64: %s\n' "$*" >&2; }

host_tools() {
  if ! command -v rsync >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null
  fi
  if [ ! -x "$QEMU" ]; then
    say "installing qemu-user-static (host tool only; no binfmt handler is registered)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
    # The package's postinst may register binfmt handlers where binfmt_misc is mounted; we never rely on them.
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding arm64 to dpkg's architectures (only so that apt-get download finds arm64 .debs)"
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
}

sysroot() {
  [ -f "$ROOT/.done" ] && return
  say "unpacking arm64 Python 3.11 into $ROOT"
  rm -rf "$ROOT" "$ARM/debs"
  mkdir -p "$ARM/debs"
  (cd "$ARM/debs" && apt-get download -qq $(for d in $DEBS; do printf '%s:arm64 ' "$d"; done) $ALL_ARCH_DEBS)
  mkdir -p "$ROOT"
  for d in "$ARM"/debs/*.deb; do dpkg -x "$d" "$ROOT"; done
  # usr-merge by hand (dpkg -x makes a real /lib): the loader is /lib/ld-linux-aarch64.so.1
  cp -a "$ROOT/lib/." "$ROOT/usr/lib/" && rm -rf "$ROOT/lib" && ln -s usr/lib "$ROOT/lib"
  # Shadow the host's folders that qemu -L would otherwise fall through to (x86 packages).
  mkdir -p "$ROOT/usr/lib/python3/dist-packages" "$ROOT/usr/local/lib/python3.11/dist-packages"
  "$QEMU" -L "$ROOT" "$ROOT/usr/bin/python3.11" -c 'import platform, ssl; assert platform.machine() == "aarch64", platform.machine()'
  touch "$ROOT/.done"
}

venv() {
  [ -f "$VENV/.done" ] && return
  say "creating the emulated venv $VENV"
  rm -rf "$VENV"
  "$QEMU" -L "$ROOT" "$ROOT/usr/bin/python3.11" -m venv --without-pip "$VENV"
  rm "$VENV/bin/python3.11"
  # argv[0] (-0) is this script, so sys.executable is too and subprocesses are emulated as well.
  cat > "$VENV/bin/python3.11" <<EOS
#!/bin/sh
# aarch64 Python under QEMU user mode (no binfmt): argv[0] is this script, so sys.executable is too
exec $QEMU -L $ROOT -0 "\$0" $ROOT/usr/bin/python3.11 "\$@"
EOS
  chmod +x "$VENV/bin/python3.11"
  "$VENV/bin/python" -m ensurepip >/dev/null
  nice -n 15 "$VENV/bin/python" -m pip install -q -U pip
  touch "$VENV/.done"
}

# The test extra without ray (Ray's binaries cannot start without binfmt) and ruff (lint is x86's job).
test_extras() {
  python3 - "$PROJECT/pyproject.toml" <<'EOP'
import re, sys, tomllib
extra = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["test"]
print(" ".join(r for r in extra if re.split(r"[<>=!~\[ ;]", r)[0] not in ("ray", "ruff")))
EOP
}

copy() {
  mkdir -p "$COPY"
  # A copy, so the emulated editable install never writes into the checkout.
  rsync -a --delete --exclude '.git' --exclude '.venv*' --exclude '*.egg-info' --exclude '__pycache__' \
    --exclude '.pytest_cache' --exclude '.hypothesis' "$PROJECT/" "$COPY/"
}

install() {
  local stamp
  stamp=$(sha256sum "$PROJECT/pyproject.toml" | cut -c1-16)
  [ -f "$VENV/.installed-$stamp" ] && return
  say "installing echo-rnn with its test extra (minus ray, ruff) for aarch64 (TensorFlow's wheel: ~6 min)"
  [ "$COPY" = "$ARM/echo-rnn" ] || (COPY=$ARM/echo-rnn; copy)
  # shellcheck disable=SC2086,SC2046
  nice -n 15 "$VENV/bin/python" -m pip install -q --only-binary=:all: ${ECHO_RNN_ARM_PIP:-} -e "$ARM/echo-rnn" $(test_extras)
  rm -f "$VENV"/.installed-*
  touch "$VENV/.installed-$stamp"
}

host_tools
sysroot
venv
copy
install
cd "$COPY"
export PATH="$VENV/bin:$PATH" PYTHONPATH="$COPY${PYTHONPATH:+:$PYTHONPATH}"
# Emulation runs tens of times slower: the suite's subprocess timeouts stretch by this (tests/conftest.py).
export ECHO_RNN_TEST_TIME_FACTOR=${ECHO_RNN_TEST_TIME_FACTOR:-5}
if [ "${1:-}" = "--run" ]; then
  shift
  exec nice -n 15 "$@"
fi
[ $# -gt 0 ] || set -- -m "not slow" -n 2 --dist loadfile
say "$("$VENV/bin/python" -c 'import platform, sys; print(platform.machine(), "Python", sys.version.split()[0])'): pytest $*"
exec nice -n 15 "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
