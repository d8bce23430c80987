#!/usr/bin/env bash
# A local AWS Secrets Manager for tests: moto's server (PyPI `moto[server]`) on 127.0.0.1.
#
#   eval "$(scripts/moto.sh start)"   installs moto when missing, starts it on a free port, waits
#                                     until it answers, and prints the exports that point the AWS
#                                     SDK at it (AWS_ENDPOINT_URL, dummy keys, region, no IMDS)
#                                     plus PGALIGN_MOTO_PID / PGALIGN_PYTHON
#   scripts/moto.sh stop              stops the server started by `start` (PGALIGN_MOTO_PID)
#   scripts/moto.sh python            prints the python that has moto and boto3 (installing them)
#   scripts/moto.sh put NAME JSON     creates (or updates) a secret, prints its ARN
#
# Nothing here reaches AWS: every call goes to the local server.
set -euo pipefail

say() { echo "moto.sh: $*" >&2; }

# The python to use: $PGALIGN_PYTHON, else python3 when it already has moto's server, else a
# virtualenv in ~/.cache made for it (works where the system python refuses pip installs).
moto_python() {
  if [ -n "${PGALIGN_PYTHON:-}" ]; then echo "$PGALIGN_PYTHON"; return; fi
  local have='import moto.server, boto3, flask'
  if python3 -c "$have" >/dev/null 2>&1; then command -v python3; return; fi
  local venv="${PGALIGN_MOTO_VENV:-$HOME/.cache/pgalign-moto-venv}"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$have" >/dev/null 2>&1; then
    echo "$venv/bin/python"; return
  fi
  say "installing moto[server] (PyPI)"
  if python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/python" -m pip install --quiet 'moto[server]' >&2; then
    echo "$venv/bin/python"; return
  fi
  python3 -m pip install --quiet --user 'moto[server]' >&2 \
    || python3 -m pip install --quiet 'moto[server]' >&2
  python3 -c "$have" || { say "cannot install moto[server]"; exit 1; }
  command -v python3
}

free_port() {
  "$1" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd="${1:-}"
case "$cmd" in
  python)
    moto_python
    ;;
  start)
    py="$(moto_python)"
    log="${PGALIGN_MOTO_LOG:-${TMPDIR:-/tmp}/pgalign-moto-$$.log}"
    for _try in 1 2 3; do
      port="$(free_port "$py")"
      # setsid: its own process group, so `stop` ends the server and nothing else.
      setsid "$py" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
      pid=$!
      ready=""
      for _ in $(seq 1 150); do   # up to 15 s: moto imports for 3-5 s on a busy machine
        if "$py" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$port" 2>/dev/null; then
          ready=1; break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      [ -n "$ready" ] && break
      kill "$pid" 2>/dev/null || true
      say "moto did not start on port $port (log: $log): $(tail -3 "$log" 2>/dev/null | tr '\n' ' ')"
    done
    [ -n "$ready" ] || exit 1
    say "moto's Secrets Manager on http://127.0.0.1:$port (pid $pid, log $log)"
    cat <<EOF
export PGALIGN_MOTO_PID=$pid
export PGALIGN_PYTHON=$py
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=\${AWS_REGION:-us-east-1}
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
EOF
    ;;
  stop)
    pid="${2:-${PGALIGN_MOTO_PID:-}}"
    [ -n "$pid" ] || { say "stop: no PGALIGN_MOTO_PID"; exit 0; }
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    ;;
  put)
    [ $# -eq 3 ] || { say "usage: moto.sh put NAME JSON"; exit 2; }
    : "${AWS_ENDPOINT_URL:?run eval \"\$(scripts/moto.sh start)\" first}"
    py="$(moto_python)"
    "$py" - "$2" "$3" <<'EOF'
import os, sys, boto3
name, value = sys.argv[1], sys.argv[2]
sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                  region_name=os.environ.get("AWS_REGION", "us-east-1"))
try:
    arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
except sm.exceptions.ResourceExistsException:
    arn = sm.put_secret_value(SecretId=name, SecretString=value)["ARN"]
print(arn)
EOF
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
