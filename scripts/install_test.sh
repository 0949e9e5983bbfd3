#!/usr/bin/env bash
# Tests install.sh against archives served from 127.0.0.1: it packs a stand-in `skiff` (a
# shell script printing `skiff 9.9.9`) as skiff-<target>.tar.gz with its .sha256, as the
# release workflow does, and checks that install.sh installs the one for this machine,
# maps OS and processor names to the right target (through a stand-in `uname` first on
# PATH), falls back to wget and shasum, refuses an archive whose checksum does not match
# without installing anything, and says clearly when there is no build for the machine.
# Run by scripts/test; needs python3 (for http.server), tar, curl and wget.
set -euo pipefail
cd "$(dirname "$0")/.."
install_sh="$PWD/install.sh"

work=$(mktemp -d -t skiff-install-test.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0
ok() {
  passed=$((passed + 1))
  echo "ok - $1"
}
not_ok() {
  failed=$((failed + 1))
  echo "not ok - $1"
  if [ -n "${2:-}" ]; then sed 's/^/    /' "$2"; fi
}

# The release archives: skiff-<target>/{skiff,README.md,CHANGELOG.md}, and `<hex>  <name>`.
targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin"
mkdir -p "$work/releases"
for target in $targets; do
  mkdir -p "$work/pack/skiff-$target"
  printf '#!/bin/sh\n# built for %s\necho "skiff 9.9.9"\n' "$target" >"$work/pack/skiff-$target/skiff"
  chmod 755 "$work/pack/skiff-$target/skiff"
  cp README.md CHANGELOG.md "$work/pack/skiff-$target/"
  tar -czf "$work/releases/skiff-$target.tar.gz" -C "$work/pack" "skiff-$target"
  (cd "$work/releases" && sha256sum "skiff-$target.tar.gz" >"skiff-$target.tar.gz.sha256")
done

# Port 0: the server picks a free port and says which on its first line.
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/releases" >"$work/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^Serving HTTP on [^ ]* port \([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "the HTTP server did not start; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
base="http://127.0.0.1:$port"

# install DIR OUT [VAR=VALUE...]: run install.sh (with /bin/sh, as `curl ... | sh` would)
# from the local base URL into DIR; its temporary directories go under $work/tmp.
mkdir -p "$work/tmp"
install() {
  local dir=$1 out=$2
  shift 2
  env TMPDIR="$work/tmp" SKIFF_INSTALL_BASE_URL="$base" SKIFF_INSTALL_DIR="$dir" "$@" /bin/sh "$install_sh" >"$out" 2>&1
}

# A `uname` that answers `-s` with $1 and `-m` with $2, in a directory of its own.
fake_uname() {
  local dir="$work/uname-$1-$2"
  mkdir -p "$dir"
  # shellcheck disable=SC2016 # $1 is the stand-in's own argument
  printf '#!/bin/sh\ncase "$1" in -s) echo %s ;; -m) echo %s ;; *) exit 1 ;; esac\n' "$1" "$2" >"$dir/uname"
  chmod 755 "$dir/uname"
  echo "$dir"
}

# 1. This machine's target, as install.sh works it out.
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64 | Linux-amd64) here=x86_64-unknown-linux-musl ;;
  Linux-aarch64 | Linux-arm64) here=aarch64-unknown-linux-musl ;;
  Darwin-x86_64) here=x86_64-apple-darwin ;;
  Darwin-arm64) here=aarch64-apple-darwin ;;
  *) here= ;;
esac
if [ -z "$here" ]; then
  echo "this machine ($(uname -s) $(uname -m)) has no release target; install.sh cannot be tested here" >&2
  exit 1
fi
dir="$work/installed"
if ! install "$dir" "$work/out1"; then
  not_ok "install.sh installs the archive for this machine" "$work/out1"
elif [ "$("$dir/skiff" --version)" != "skiff 9.9.9" ] || ! grep -q "built for $here" "$dir/skiff"; then
  not_ok "the installed skiff is the one packed for $here" "$work/out1"
elif ! grep -qF "installed skiff 9.9.9 ($here) as $dir/skiff" "$work/out1" \
  || ! grep -qF "$dir is not on PATH" "$work/out1"; then
  not_ok "install.sh says where skiff went and that the directory is not on PATH" "$work/out1"
else
  ok "install.sh installs skiff-$here.tar.gz, says where, and hints at PATH"
fi

# Installing again replaces the binary; with the directory on PATH there is no hint.
if install "$dir" "$work/out2" PATH="$dir:$PATH" && ! grep -q "not on PATH" "$work/out2" \
  && [ "$("$dir/skiff" --version)" = "skiff 9.9.9" ] && [ "$(ls -A "$dir")" = skiff ]; then
  ok "a second install replaces skiff and gives no PATH hint when the directory is on PATH"
else
  not_ok "a second install replaces skiff and gives no PATH hint when the directory is on PATH" "$work/out2"
fi

# 2. OS and processor names map to the release targets (a stand-in uname, Linux's tools).
for case in "Linux x86_64 x86_64-unknown-linux-musl" "Linux amd64 x86_64-unknown-linux-musl" \
  "Linux aarch64 aarch64-unknown-linux-musl" "Linux arm64 aarch64-unknown-linux-musl" \
  "Darwin arm64 aarch64-apple-darwin" "Darwin x86_64 x86_64-apple-darwin"; do
  read -r os arch want <<<"$case"
  fake=$(fake_uname "$os" "$arch")
  dir="$work/map-$os-$arch"
  if install "$dir" "$work/out-map" PATH="$fake:$PATH" && grep -q "built for $want" "$dir/skiff"; then
    ok "$os $arch installs $want"
  else
    not_ok "$os $arch installs $want" "$work/out-map"
  fi
done

# 3. Without curl and sha256sum: wget and shasum. PATH holds links to the tools install.sh
# needs and nothing else.
if command -v wget >/dev/null && command -v shasum >/dev/null; then
  mkdir -p "$work/tools"
  for tool in uname mktemp rm mkdir tar gzip cp mv chmod tr wget shasum; do
    if command -v "$tool" >/dev/null; then ln -sf "$(command -v "$tool")" "$work/tools/$tool"; fi
  done
  dir="$work/installed-wget"
  if install "$dir" "$work/out3" PATH="$work/tools" && [ "$("$dir/skiff" --version)" = "skiff 9.9.9" ]; then
    ok "without curl and sha256sum, install.sh uses wget and shasum"
  else
    not_ok "without curl and sha256sum, install.sh uses wget and shasum" "$work/out3"
  fi
else
  not_ok "wget and shasum are needed for the fallback test"
fi

# 4. A checksum that does not match: non-zero exit, a clear message, nothing installed.
sums="$work/releases/skiff-$here.tar.gz.sha256"
good=$(cat "$sums")
printf '%s  skiff-%s.tar.gz\n' "$(printf 'not the archive' | sha256sum | cut -d' ' -f1)" "$here" >"$sums"
dir="$work/installed-bad"
mkdir -p "$dir"
if install "$dir" "$work/out4"; then
  not_ok "install.sh refuses an archive whose checksum does not match (it exited 0)" "$work/out4"
elif ! grep -q "checksum of skiff-$here.tar.gz does not match" "$work/out4"; then
  not_ok "install.sh says the checksum does not match" "$work/out4"
elif [ -n "$(ls -A "$dir")" ]; then
  not_ok "a refused archive leaves the install directory empty (it holds: $(ls -A "$dir"))"
else
  ok "install.sh refuses an archive whose checksum does not match, says so, installs nothing"
fi
# A .sha256 that holds no checksum at all is refused too.
echo "<html>not found</html>" >"$sums"
if ! install "$dir" "$work/out5" && grep -q "holds no SHA-256" "$work/out5" && [ -z "$(ls -A "$dir")" ]; then
  ok "install.sh refuses a .sha256 that holds no checksum"
else
  not_ok "install.sh refuses a .sha256 that holds no checksum" "$work/out5"
fi
echo "$good" >"$sums"

# A missing archive (a release without this target) fails and names the URL.
if ! install "$work/installed-missing" "$work/out6" SKIFF_INSTALL_BASE_URL="$base/v0.0.0" \
  && grep -q "could not download $base/v0.0.0/skiff-" "$work/out6"; then
  ok "a missing archive fails and names its URL"
else
  not_ok "a missing archive fails and names its URL" "$work/out6"
fi

# 5. No build for the machine: a clear message, and no download.
for case in "FreeBSD x86_64 no prebuilt skiff for FreeBSD.*cargo install" \
  "MINGW64_NT-10.0-19045 x86_64 .*on Windows download skiff-x86_64-pc-windows-msvc.zip" \
  "Linux riscv64 no prebuilt skiff for the riscv64 processor on Linux.*cargo install"; do
  read -r os arch want <<<"$case"
  fake=$(fake_uname "$os" "$arch")
  dir="$work/unsupported-$os-$arch"
  if ! install "$dir" "$work/out7" PATH="$fake:$PATH" && grep -q "error: $want" "$work/out7" \
    && ! grep -q downloading "$work/out7" && [ ! -e "$dir" ]; then
    ok "$os $arch: install.sh says there is no build and what to do"
  else
    not_ok "$os $arch: install.sh says there is no build and what to do" "$work/out7"
  fi
done

# install.sh removes its temporary directory, whatever happened.
if [ -z "$(ls -A "$work/tmp")" ]; then
  ok "install.sh leaves no temporary directory behind"
else
  not_ok "install.sh leaves no temporary directory behind (found: $(ls -A "$work/tmp"))"
fi

echo "install.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
