# Sourced by scripts/test and scripts/demo: installs the pinned moto server into a cached
# virtualenv if missing, starts it on a free 127.0.0.1 port, and stops it (by PID) on exit.
# After `start_emulator`, EMULATOR_URL is the endpoint and EMULATOR_PYTHON has boto3.
# After `start_double` (which needs start_emulator first), DOUBLE_URL is scripts/double.py,
# a stdlib-only server in front of moto that adds what moto lacks (CloudFront Functions
# update/publish, the KeyValueStore data plane, faithful distribution configs and ETags).

emulator_venv() {
  local cache="${SKIFF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff}"
  local requirements stamp venv
  requirements="$(dirname "${BASH_SOURCE[0]}")/moto-requirements.txt"
  stamp=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:12])' "$requirements") || return 1
  venv="$cache/moto-$stamp"
  # A venv cannot be moved (its scripts name their interpreter by path), so it is built in
  # place and marked complete last: a failed or interrupted install is never reused.
  if [ ! -f "$venv/.complete" ]; then
    echo "installing the local AWS emulator (moto) into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache" || return 1
    if python3 -m venv "$venv" \
      && "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
      && touch "$venv/.complete"; then
      :
    else
      rm -rf "$venv"
      echo "could not install moto from $requirements" >&2
      return 1
    fi
  fi
  echo "$venv"
}

start_emulator() {
  local venv
  venv=$(emulator_venv) || exit 1
  EMULATOR_PYTHON="$venv/bin/python"
  local port
  port=$("$EMULATOR_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  EMULATOR_LOG=$(mktemp -t skiff-moto.XXXXXX)
  MOTO_ACM_VALIDATION_WAIT=0 "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$EMULATOR_LOG" 2>&1 &
  EMULATOR_PID=$!
  trap stop_emulator EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  EMULATOR_URL="http://127.0.0.1:$port"
  local tries=0
  until "$EMULATOR_PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$EMULATOR_URL" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ] || ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
      echo "the emulator did not start; its log:" >&2
      cat "$EMULATOR_LOG" >&2
      exit 1
    fi
    sleep 0.5
  done
  export EMULATOR_URL EMULATOR_PYTHON
}

start_double() {
  if [ -z "${EMULATOR_URL:-}" ] || [ -z "${EMULATOR_PYTHON:-}" ]; then
    echo "start_double: call start_emulator first" >&2
    exit 1
  fi
  DOUBLE_LOG=$(mktemp -t skiff-double.XXXXXX)
  # Port 0: the double picks a free port and prints "listening on http://127.0.0.1:<port>".
  "$EMULATOR_PYTHON" -u "$(dirname "${BASH_SOURCE[0]}")/double.py" --listen-port 0 --upstream "$EMULATOR_URL" \
    >"$DOUBLE_LOG" 2>&1 &
  DOUBLE_PID=$!
  DOUBLE_URL=
  local tries=0
  until DOUBLE_URL=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$DOUBLE_LOG" | head -n 1) && [ -n "$DOUBLE_URL" ]; do
    tries=$((tries + 1))
    if [ "$tries" -ge 100 ] || ! kill -0 "$DOUBLE_PID" 2>/dev/null; then
      echo "the emulator double did not start; its log:" >&2
      cat "$DOUBLE_LOG" >&2
      exit 1
    fi
    sleep 0.1
  done
  export DOUBLE_URL
}

stop_double() {
  if [ -n "${DOUBLE_PID:-}" ]; then
    kill "$DOUBLE_PID" 2>/dev/null || true
    wait "$DOUBLE_PID" 2>/dev/null || true
    DOUBLE_PID=
  fi
  [ -n "${DOUBLE_LOG:-}" ] && rm -f "$DOUBLE_LOG"
  return 0
}

# Also stops the double, if one was started (it sits in front of moto).
stop_emulator() {
  stop_double
  if [ -n "${EMULATOR_PID:-}" ]; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
    EMULATOR_PID=
  fi
  [ -n "${EMULATOR_LOG:-}" ] && rm -f "$EMULATOR_LOG"
  return 0
}
