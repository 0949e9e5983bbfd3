#!/bin/sh
# Installs skiff from a GitHub release on Linux or macOS (x86_64 or arm64):
#
#   curl -fsSL https://github.com/skiff-rs/skiff/releases/latest/download/install.sh | sh
#
# It downloads skiff-<target>.tar.gz and skiff-<target>.tar.gz.sha256, refuses the archive
# unless its SHA-256 matches, and puts `skiff` in the install directory. Nothing else is
# written: the download goes to a temporary directory that is removed on exit.
#
#   SKIFF_VERSION           release tag to install, e.g. v0.2.0 (default: the latest release)
#   SKIFF_INSTALL_DIR       where to put `skiff` (default: $HOME/.local/bin)
#   SKIFF_INSTALL_BASE_URL  where the archives are (default: the release's download URL), for
#                           a mirror; the archive is fetched from $SKIFF_INSTALL_BASE_URL/skiff-<target>.tar.gz
#
# The targets are x86_64/aarch64-unknown-linux-musl (static) and x86_64/aarch64-apple-darwin.
# The whole script is one function called on the last line, so a download cut short runs nothing.

set -eu

repository="skiff-rs/skiff"
releases="https://github.com/$repository/releases"

say() {
  printf 'skiff-install: %s\n' "$*" >&2
}

fail() {
  say "error: $*"
  exit 1
}

# The Rust target of this machine, from `uname`.
detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case "$os" in
    Linux) os_part=unknown-linux-musl ;;
    Darwin)
      os_part=apple-darwin
      # A shell under Rosetta reports x86_64 on Apple silicon; the arm64 build runs natively.
      if [ "$arch" = x86_64 ] && [ "$(sysctl -n hw.optional.arm64 2>/dev/null || true)" = 1 ]; then
        arch=arm64
      fi
      ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT)
      fail "this script installs skiff on Linux and macOS; on Windows download skiff-x86_64-pc-windows-msvc.zip from $releases and put skiff.exe on PATH, or build it: cargo install --locked --git https://github.com/$repository skiff"
      ;;
    *)
      fail "no prebuilt skiff for $os (there are builds for Linux and macOS, and a Windows zip at $releases); build it from source: cargo install --locked --git https://github.com/$repository skiff"
      ;;
  esac
  case "$arch" in
    x86_64 | amd64) arch_part=x86_64 ;;
    aarch64 | arm64) arch_part=aarch64 ;;
    *)
      fail "no prebuilt skiff for the $arch processor on $os (there are builds for x86_64 and aarch64); build it from source: cargo install --locked --git https://github.com/$repository skiff"
      ;;
  esac
  echo "$arch_part-$os_part"
}

# download URL FILE: curl, else wget.
download() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1" || fail "could not download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" || fail "could not download $1"
  else
    fail "neither curl nor wget is installed; install one of them and run this again"
  fi
}

# The SHA-256 of a file, in lowercase hex.
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sum=$(sha256sum "$1") || fail "sha256sum could not read $1"
  elif command -v shasum >/dev/null 2>&1; then
    sum=$(shasum -a 256 "$1") || fail "shasum could not read $1"
  else
    fail "found neither sha256sum nor shasum to check the download with; install one of them (coreutils or perl)"
  fi
  echo "${sum%% *}"
}

main() {
  target=$(detect_target)
  version=${SKIFF_VERSION:-latest}
  case "$version" in
    latest) default_base="$releases/latest/download" ;;
    v*) default_base="$releases/download/$version" ;;
    *) default_base="$releases/download/v$version" ;;
  esac
  base=${SKIFF_INSTALL_BASE_URL:-$default_base}
  base=${base%/}
  install_dir=${SKIFF_INSTALL_DIR:-${HOME:?set HOME or SKIFF_INSTALL_DIR}/.local/bin}
  archive="skiff-$target.tar.gz"

  tmp=$(mktemp -d 2>/dev/null || mktemp -d -t skiff-install) || fail "could not create a temporary directory"
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  say "downloading $base/$archive"
  download "$base/$archive" "$tmp/$archive"
  download "$base/$archive.sha256" "$tmp/$archive.sha256"

  # The .sha256 file is `<hex>  <file name>`, as sha256sum writes it.
  read -r expected _ <"$tmp/$archive.sha256" || true
  expected=$(printf '%s' "${expected:-}" | tr 'A-F' 'a-f')
  case "$expected" in
    *[!0-9a-f]* | "") fail "$archive.sha256 holds no SHA-256 (expected '<hex>  $archive'); not installing" ;;
  esac
  [ "${#expected}" -eq 64 ] || fail "$archive.sha256 holds no SHA-256 (expected 64 hex digits); not installing"
  actual=$(sha256_of "$tmp/$archive")
  if [ "$actual" != "$expected" ]; then
    fail "the checksum of $archive does not match $archive.sha256 (expected $expected, got $actual): the download is corrupt or was altered; nothing was installed"
  fi

  mkdir "$tmp/unpacked"
  tar -xzf "$tmp/$archive" -C "$tmp/unpacked" || fail "could not unpack $archive"
  binary="$tmp/unpacked/skiff-$target/skiff"
  [ -f "$binary" ] || fail "$archive has no skiff-$target/skiff; nothing was installed"

  mkdir -p "$install_dir" || fail "could not create $install_dir (set SKIFF_INSTALL_DIR to a directory you can write)"
  # Copy beside the old binary, then rename over it: a running skiff is never overwritten in place.
  cp "$binary" "$install_dir/.skiff.tmp.$$" || fail "could not write to $install_dir (set SKIFF_INSTALL_DIR to a directory you can write)"
  chmod 755 "$install_dir/.skiff.tmp.$$"
  mv -f "$install_dir/.skiff.tmp.$$" "$install_dir/skiff" || {
    rm -f "$install_dir/.skiff.tmp.$$"
    fail "could not install $install_dir/skiff"
  }

  installed=$("$install_dir/skiff" --version 2>/dev/null || echo skiff)
  say "installed $installed ($target) as $install_dir/skiff"
  case ":${PATH:-}:" in
    *":$install_dir:"*) ;;
    *) say "$install_dir is not on PATH; add it, e.g. in ~/.profile: export PATH=\"$install_dir:\$PATH\"" ;;
  esac
}

main "$@"
