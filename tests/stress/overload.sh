#!/usr/bin/env bash
# overload.sh AUDIOCLASS SOURCE_DIR [REQUESTS [CONCURRENCY]] - far more requests than the
# queue holds (issue 8). A server with a 4-clip queue and a 200 ms batch wait gets REQUESTS
# (default 3000) uploads from CONCURRENCY (default 64) clients at once. Checks: every request
# is answered (200 or 503 queue_full with Retry-After, nothing else, no connection errors);
# every 200 is the right answer; 503s come back fast (p50 and p99 of their latency are
# printed; p99 must stay under 1 s); the server's RSS does not grow (before: after a
# warm-up burst, after: after the overload; growth must stay under 16 MiB); and right after
# the overload normal service resumes (correct answer, queue depth back to 0, /readyz 200).
# No check depends on how fast the machine is: the dispatcher is held (a test hook,
# AUDIOCLASS_TEST_HOLD_DIR) at the start of the burst until the queue is full and a 503 has
# been counted, so the queue overflows on a loaded 2-core machine too; the 503 latency
# figures are printed, and only checked (p99 < 1 s) with OVERLOAD_CHECK_LATENCY=1.
# `make test-stress` runs it in full; tests/integration/test_overload.sh a short version.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
N=${3:-3000}
P=${4:-64}
source "$SRC/tests/integration/lib.sh"
T=$(mktemp -d)
PID=""
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
Z1=$SRC/tests/golden/zoo1d.safetensors

mkdir -p "$T/hold"
export AUDIOCLASS_TEST_HOLD_DIR=$T/hold OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
"$EXE" serve --port 0 --bind 127.0.0.1 --model zoo1d="$Z1" --queue-size 4 --max-batch-wait-ms 200 \
  --max-batch 64 --http-threads 8 --threads 1 2>"$T/server.log" &
PID=$!
for _ in $(seq 100); do
  PORT=$(grep -m1 '"event":"listening"' "$T/server.log" 2>/dev/null | jq -r .port)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { bad "server started"; cat "$T/server.log"; exit 1; }
URL=http://127.0.0.1:$PORT
rss() { awk '/^VmRSS:/{print $2}' "/proc/$PID/status"; }
fds() { ls "/proc/$PID/fd" | wc -l; }

"$MK" "$T/a.wav" wav16 8000 1 2.0 tone 440
labels() { grep -o '"label":"[^"]*"' "$1" | tr -d '\n'; }
curl -s -o "$T/ref.json" -H 'Content-Type: audio/wav' --data-binary "@$T/a.wav" "$URL/classify"
REF=$(labels "$T/ref.json")
check "reference answer" test -n "$REF"

cat >"$T/one.sh" <<EOF
curl -s -o "$T/out/\$1.json" -D "$T/out/\$1.h" -w '%{http_code} %{time_total}\n' \\
  -H 'Content-Type: audio/wav' --data-binary "@$T/a.wav" "$URL/classify" >"$T/out/\$1.code" 2>/dev/null
EOF
burst() { # burst COUNT: COUNT uploads, P at a time
  rm -rf "$T/out"
  mkdir "$T/out"
  seq "$1" | xargs -P "$P" -n 1 bash "$T/one.sh"
}
burst 200 # warm-up: every thread, buffer and pool in use once
rss0=$(rss)
fds0=$(fds)
metric() { curl -s "$URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
touch "$T/hold/dispatch"
t0=$(date +%s%N)
burst "$N" &
BURST=$!
# hold the dispatcher until the queue is full and refusals have begun, then let it run
for _ in $(seq 600); do
  [ "$(metric audioclass_queue_depth)" = 4 ] &&
    [ -n "$(metric 'audioclass_requests_total{route="classify",status="503"}')" ] && break
  sleep 0.1
done
rm -f "$T/hold/dispatch"
wait $BURST
t1=$(date +%s%N)
rss1=$(rss)
fds1=$(fds)

ok200=0 n503=0 other=0 wrong=0 noretry=0
: >"$T/lat503"
for f in "$T"/out/*.code; do
  read -r code secs <"$f"
  i=${f%.code}
  case $code in
  200) ok200=$((ok200 + 1)); [ "$(labels "$i.json")" = "$REF" ] || wrong=$((wrong + 1)) ;;
  503) n503=$((n503 + 1)); echo "$secs" >>"$T/lat503"
       grep -qi '^Retry-After:' "$i.h" || noretry=$((noretry + 1))
       grep -q '"code":"queue_full"' "$i.json" || other=$((other + 1)) ;;
  *) other=$((other + 1)) ;;
  esac
done
answered=$((ok200 + n503))
p50=$(sort -n "$T/lat503" | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)] * 1000; else print 0}')
p99=$(sort -n "$T/lat503" | awk '{a[NR]=$1} END {if (NR) print a[int(NR*0.99 > 1 ? NR*0.99 : 1)] * 1000; else print 0}')
echo "# $N requests from $P clients in $(((t1 - t0) / 1000000)) ms: $ok200 x 200, $n503 x 503, $other other"
echo "# 503 latency: p50 ${p50} ms, p99 ${p99} ms"
echo "# RSS before ${rss0} kB, after ${rss1} kB (growth $((rss1 - rss0)) kB); fds $fds0 -> $fds1"
check_eq "every request answered with 200 or 503 queue_full" "$N" "$answered"
check_eq "no other answers or connection errors" 0 "$other"
check "the queue overflowed (503s: $n503)" test "$n503" -gt 0
check_eq "every 200 is the right answer" 0 "$wrong"
check_eq "every 503 has Retry-After" 0 "$noretry"
if [ -n "${OVERLOAD_CHECK_LATENCY:-}" ]; then
  check "503s are fast: p99 ${p99} ms < 1000 ms" awk -v v="$p99" 'BEGIN { exit !(v < 1000) }'
fi
if ldd "$EXE" 2>/dev/null | grep -q libasan; then
  # ASan's quarantine holds freed memory (256 MB) on purpose; LeakSanitizer checks at exit.
  echo "# ASan build: RSS growth not checked (leaks are: the server must exit 0)"
else
  check "no memory growth: $((rss1 - rss0)) kB < 16384 kB" test $((rss1 - rss0)) -lt 16384
fi
check "no fd growth: $fds0 -> $fds1" test "$fds1" -le $((fds0 + 2))

# Normal service right after.
code=$(curl -s -o "$T/after.json" -w '%{http_code}' -H 'Content-Type: audio/wav' --data-binary "@$T/a.wav" "$URL/classify")
check "right after: 200 with the right answer" test "$code" = 200 -a "$(labels "$T/after.json")" = "$REF"
check_eq "right after: queue empty" 0 "$(curl -s "$URL/metrics" | awk '/^audioclass_queue_depth /{print $2}')"
check_eq "right after: ready" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")"
kill -TERM "$PID"
wait "$PID"
check_eq "server exits 0" 0 $?
PID=""
finish
