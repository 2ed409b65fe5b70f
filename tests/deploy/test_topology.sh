#!/usr/bin/env bash
# test_topology.sh AUDIOCLASS SOURCE_DIR - deploy/nginx.conf in front of three replicas, on
# loopback: Debian's nginx runs the shipped file with only `listen` and the upstream server
# line rewritten. Checks that load spreads over every replica, that a replica killed
# (SIGKILL) or stopped (SIGTERM) under load costs no request, that a restarted replica gets
# traffic again, and the balancer's own limits and errors. Needs nginx, curl and jq.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
require_tools curl jq "$MK" "$NGINX"
T=$(mktemp -d)
chmod 755 "$T" # nginx workers run as nobody when the test runs as root
PIDS=()
NGX=""
cleanup() {
  # nginx's master stops its workers on SIGTERM; killed with SIGKILL it would orphan them.
  [ -n "$NGX" ] && kill -TERM "$NGX" 2>/dev/null
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT; [ -n "${KEEP:-}" ] && trap "echo kept \$T" EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# replica I [PORT]: starts replica I (on PORT, or a free port remembered in PORTS[I]).
PORTS=()
REP=()
replica() {
  local i=$1 port=${2:-0} log=$T/replica$1.$RANDOM.log
  # One OpenMP thread each: three replicas share this machine's cores with nginx and curl.
  "$EXE" serve --port "$port" --bind 127.0.0.1 --threads 1 --http-threads 2 \
    --model "zoo1d=$SRC/tests/golden/zoo1d.safetensors" 2>"$log" &
  REP[$i]=$!
  PIDS+=($!)
  for _ in $(seq 100); do
    port=$(grep -m1 '"event":"listening"' "$log" 2>/dev/null | jq -r .port)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { bad "replica $i started"; cat "$log"; exit 1; }
  PORTS[$i]=$port
}
# served I: /classify requests replica I answered with 200 since it started.
served() {
  curl -s "http://127.0.0.1:${PORTS[$1]}/metrics" |
    awk '/^audioclass_requests_total\{route="classify",status="200"\}/ {n = $2} END {print n + 0}'
}
# load N OUT: N classify requests through nginx, 8 at a time; one status per line in OUT.
load() {
  seq "$1" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 \
    --data-binary @"$T/tone.wav" -H 'Content-Type: audio/wav' "$LB/classify?model=zoo1d" >"$2"
}
all_200() { [ "$(wc -l <"$2")" -eq "$1" ] && [ -z "$(grep -v '^200$' "$2")" ]; }
statuses() { sort "$1" | uniq -c | tr -s ' \n' ' '; }

"$MK" "$T/tone.wav" wav16 16000 1 1.0 tone 440
for i in 1 2 3; do replica $i; done

# The shipped config, pointed at the loopback replicas. Fail if the lines to rewrite are gone,
# rather than testing some other configuration.
mkdir "$T/nginx"
NPORT=$(free_port)
UP=""
for i in 1 2 3; do UP+="server 127.0.0.1:${PORTS[$i]}\\1;\\n        "; done
sed -E -e "s/^( *)listen 8080;/\\1listen 127.0.0.1:$NPORT;/" \
  -e "s/^ *server audioclass:8080(.*);/        $UP/" "$SRC/deploy/nginx.conf" >"$T/nginx/nginx.conf"
check_eq "nginx.conf: listen rewritten" 1 "$(grep -c "listen 127.0.0.1:$NPORT;" "$T/nginx/nginx.conf")"
check_eq "nginx.conf: three upstream servers" 3 "$(grep -c '^ *server 127.0.0.1:[0-9]* max_fails' "$T/nginx/nginx.conf")"
"$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e stderr -g 'daemon off;' >"$T/nginx/access.log" 2>"$T/nginx/error.log" &
NGX=$!
LB=http://127.0.0.1:$NPORT
for _ in $(seq 50); do curl -sf "$LB/healthz" >/dev/null && break; sleep 0.1; done
check "nginx proxies /healthz" curl -sf "$LB/healthz"

# 1. Round robin: every replica takes a fair share.
load 300 "$T/l1"
check "300 requests: all 200 ($(statuses "$T/l1"))" all_200 300 "$T/l1"
for i in 1 2 3; do
  n=$(served $i)
  check "replica $i served $n of 300 (>= 60)" test "$n" -ge 60
done

# 2. SIGKILL one replica in the middle of the load: nginx replays its requests elsewhere.
load 600 "$T/l2" &
LOADPID=$!
for _ in $(seq 300); do [ "$(wc -l <"$T/l2")" -ge 150 ] && break; sleep 0.05; done
kill -KILL "${REP[2]}"
wait "${REP[2]}" 2>/dev/null # reaped here, so bash does not report "Killed" later
KILLED_AT=$SECONDS
DONE=$(wc -l <"$T/l2")
wait $LOADPID
check "600 requests, replica 2 killed after $DONE: all 200 ($(statuses "$T/l2"))" all_200 600 "$T/l2"
RETRIED=$(grep -c 'upstream_status=[0-9-]*, ' "$T/nginx/access.log")
check "nginx replayed requests on another replica ($RETRIED)" test "$RETRIED" -ge 1

# 3. The replica restarts on its port and gets traffic again once nginx's fail_timeout (5 s)
# has passed.
replica 2 "${PORTS[2]}"
while [ $((SECONDS - KILLED_AT)) -le 6 ]; do sleep 0.5; done
load 150 "$T/l3"
check "150 requests after the restart: all 200 ($(statuses "$T/l3"))" all_200 150 "$T/l3"
n=$(served 2)
check "restarted replica 2 served $n of 150 (>= 20)" test "$n" -ge 20

# 4. SIGTERM (rolling update): the draining replica's 503s and refused connections are
# replayed too, and it exits 0.
load 400 "$T/l4" &
LOADPID=$!
for _ in $(seq 300); do [ "$(wc -l <"$T/l4")" -ge 100 ] && break; sleep 0.05; done
kill -TERM "${REP[3]}"
DONE=$(wc -l <"$T/l4")
wait "${REP[3]}"
check_eq "replica 3 exits 0 on SIGTERM under load" 0 "$?"
wait $LOADPID
check "400 requests, replica 3 stopped after $DONE: all 200 ($(statuses "$T/l4"))" all_200 400 "$T/l4"

# 5. The balancer's own answers: body limit as the server's (20 MiB), JSON errors.
head -c $((20 * 1024 * 1024 + 1)) /dev/zero >"$T/big"
code=$(curl -s -o "$T/e.json" -w '%{http_code}' --data-binary @"$T/big" -H 'Content-Type: audio/wav' "$LB/classify?model=zoo1d")
check_eq "20 MiB + 1 byte: 413 from nginx" 413 "$code"
check "413 body is the JSON error format" jq -e '.error.code == "body_too_large"' "$T/e.json"
head -c $((20 * 1024 * 1024)) /dev/zero >"$T/big"
curl -s -o "$T/e.json" --data-binary @"$T/big" -H 'Content-Type: audio/wav' "$LB/classify?model=zoo1d"
check "20 MiB exactly: passed on to a replica (its error has a request_id)" jq -e '.request_id | length > 0' "$T/e.json"
check_eq "/metrics is not served by the balancer" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$LB/metrics")"
check_eq "X-Request-Id reaches the replica and comes back" "lb-test-1" \
  "$(curl -s -D - -o /dev/null -H 'X-Request-Id: lb-test-1' "$LB/healthz" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-request-id" {print $2}')"
check_eq "nginx logged no errors beyond the expected upstream failures" "" \
  "$(grep -v 'connect() failed\|upstream prematurely closed\|recv() failed\|temporarily disabled\|no live upstreams\|while reading response header\|buffered to a temporary file\|client intended to send too large body' "$T/nginx/error.log")"
finish
