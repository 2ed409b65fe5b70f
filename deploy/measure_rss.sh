#!/usr/bin/env bash
# measure_rss.sh AUDIOCLASS MKAUDIO [serve options...] - the memory one replica needs, for
# sizing (deploy/README.md): VmRSS after loading the models, then VmRSS and peak (VmHWM)
# after a burst of 1 s, 5 s and 60 s clips to every model, 8 at a time (workspaces grow
# with --max-batch and with --threads). Example:
#   deploy/measure_rss.sh build/audioclass build/tests/tools/mkaudio --threads 2
set -eu
EXE=$1 MK=$2
shift 2
T=$(mktemp -d)
"$EXE" serve --port 0 --bind 127.0.0.1 "$@" 2>"$T/log" &
PID=$!
trap 'kill -KILL $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 200); do grep -qs '"event":"listening"' "$T/log" && break; sleep 0.1; done
PORT=$(grep -m1 '"event":"listening"' "$T/log" | jq -r .port)
kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
# RssFile = the mmapped model files (shared, but charged to the container's memory cgroup
# like any page cache); RssAnon = workspaces and audio.
rss() { echo "VmRSS $(($(kb VmRSS) / 1024)) MiB (anon $(($(kb RssAnon) / 1024)), file $(($(kb RssFile) / 1024)))"; }
echo "after load:  $(rss)"
for s in 1 5 60; do "$MK" "$T/$s.wav" wav16 44100 1 "$s" tone 440; done
for m in $(curl -s "localhost:$PORT/models" | jq -r '.models[].name'); do
  for i in $(seq 8); do for s in 1 5 60; do echo "$m $s"; done; done
done | xargs -P 8 -L 1 sh -c 'curl -s -o /dev/null --data-binary @'"$T"'/$1.wav -H "Content-Type: audio/wav" "localhost:'"$PORT"'/classify?model=$0"'
echo "after burst: $(rss), peak VmHWM $(($(kb VmHWM) / 1024)) MiB"
