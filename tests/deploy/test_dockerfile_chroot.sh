#!/usr/bin/env bash
# test_dockerfile_chroot.sh AUDIOCLASS SOURCE_DIR - the Dockerfile without a Docker engine:
# tests/deploy/dockerfile.py replays its instructions in Debian 12 roots made by debootstrap
# (the same apt-get, cmake and COPY lines, read from the Dockerfile so they cannot drift),
# then the image's ENTRYPOINT/CMD runs as its USER, as PID 1, on a read-only root, and must
# answer /healthz, its own HEALTHCHECK, /readyz and a /classify with 200 and exit 0 on SIGTERM.
# Needs root (debootstrap, chroot, mounts) and the Debian mirror. The debootstrapped root and
# the apt downloads are cached in BUILD/deploy-cache, so a re-run takes a few minutes at most.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
[ "$(id -u)" = 0 ] || { echo "FAIL - needs root (debootstrap, chroot, mount)"; exit 1; }
require_tools debootstrap unshare curl jq /usr/bin/python3
CACHE=$(dirname "$EXE")/deploy-cache
mkdir -p "$CACHE/apt-archives/partial"
W=$(mktemp -d "$CACHE/work.XXXXXX")
SRV=""
cleanup() {
  # The server (unshare's child) changed uid, which clears --kill-child's death signal.
  if [ -n "$SRV" ]; then
    for p in $(pgrep -P "$SRV"); do kill -KILL "$p"; done
    kill -KILL "$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
  fi
  # Every mount was made in a private namespace that is gone by now; refuse to delete a root
  # that still has something mounted in it (rm would walk into the host's /dev).
  if grep -q " $W/" /proc/mounts; then echo "left $W: still mounted"; else rm -rf --one-file-system "$W"; fi
}
trap cleanup EXIT

# The mirror the host uses (deb822 or one-line sources), as a Docker build would reach it.
MIRROR=$(grep -hsoE '^URIs: *\S+/debian/?$' /etc/apt/sources.list.d/*.sources | head -1 | awk '{print $2}')
[ -n "$MIRROR" ] || MIRROR=$(grep -hsoE '^deb +\S+/debian/? +bookworm' /etc/apt/sources.list | head -1 | awk '{print $2}')
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BASE=$CACHE/bookworm-minbase.tar.gz
if [ ! -s "$BASE" ]; then
  echo "debootstrap bookworm from $MIRROR (once; cached in $BASE)"
  R=$W/base
  nice debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 \
    || { tail -20 "$W/debootstrap.log"; bad "debootstrap"; finish; exit 1; }
  # What debian:bookworm-slim adds to a minbase root: the three suites in deb822 form, the
  # "slim" dpkg excludes (no docs, man pages or locales) and no apt binary caches, so the
  # sizes compare too.
  rm -f "$R/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "${MIRROR%/}" "${MIRROR%/}" >"$R/etc/apt/sources.list.d/debian.sources"
  printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n' \
    >"$R/etc/dpkg/dpkg.cfg.d/docker"
  printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' >"$R/etc/apt/apt.conf.d/docker-clean"
  find "$R/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  rm -rf "$R/usr/share/man/"* "$R/usr/share/info/"* "$R/usr/share/locale/"* \
    "$R/var/cache/apt/"*.bin "$R/var/cache/apt/archives/"*.deb "$R/var/lib/apt/lists/"*
  tar -C "$R" -czf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE" && rm -rf --one-file-system "$R"
fi
ok "Debian 12 minbase root ($(du -h "$BASE" | cut -f1) tarball)"

# The build: every instruction of the Dockerfile, in order.
if ! APT_CACHE=$CACHE/apt-archives /usr/bin/python3 "$SRC/tests/deploy/dockerfile.py" \
    "$SRC/Dockerfile" "$SRC" "$BASE" "$W" "$CACHE" >"$W/build.log" 2>&1; then
  tail -40 "$W/build.log"
  bad "Dockerfile replayed"
  finish
  exit 1
fi
ok "Dockerfile replayed (build and runtime stages)"
IMG=$W/image.json
R=$(jq -r .root "$IMG")
USERSPEC=$(jq -r .user "$IMG")
check_eq "EXPOSE 8080" 8080 "$(jq -r '.expose | join(" ")' "$IMG")"
check "runs as a numeric non-root user" test "${USERSPEC%%:*}" -gt 0
check "no compiler in the runtime image" test ! -e "$R/usr/bin/gcc" -a ! -e "$R/usr/bin/cmake"
check "no -dev headers in the runtime image" test ! -e "$R/usr/include/sndfile.h"
check_eq "every shared library resolves" "" "$(chroot "$R" /usr/bin/ldd /usr/local/bin/audioclass | grep 'not found')"
check "OpenBLAS is there to dlopen" test -e "$R/usr/lib/x86_64-linux-gnu/libopenblas.so.0"
echo "     runtime root: $(du -sm "$R" | cut -f1) MiB, $(($(tar -C "$R" -c . | gzip | wc -c) / 1048576)) MiB gzipped (about what a registry stores)"

# Run the image as Docker would: its ENV (plus a free port, as `-e AUDIOCLASS_PORT=` would
# give), its WORKDIR and USER, ENTRYPOINT+CMD exec'd as PID 1, the root mounted read-only.
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ENVS=($(jq -r '.env | to_entries[] | "\(.key)=\(.value)"' "$IMG") AUDIOCLASS_PORT=$PORT)
MNT=""
if ! ls "$R"/opt/audioclass/models/*.safetensors >/dev/null 2>&1; then
  # No bundled model yet (models/ is still being trained): mount the test model the way a
  # volume would be, read-only, and point AUDIOCLASS_MODELS at it.
  echo "     no bundled models in models/: serving tests/golden/zoo1d.safetensors from a volume"
  MNT="mount --bind -o ro $SRC/tests/golden $R/mnt &&"
  ENVS+=(AUDIOCLASS_MODELS=zoo1d=/mnt/zoo1d.safetensors)
fi
CMDLINE=$(jq -r '(.entrypoint + .cmd) | map(@sh) | join(" ")' "$IMG")
WD=$(jq -r .workdir "$IMG")
unshare --mount --pid --fork --kill-child --mount-proc="$R/proc" sh -c "
  mount --bind $R $R && mount -o remount,ro,bind $R && mount --rbind /dev $R/dev && $MNT
  exec chroot --userspec=$USERSPEC $R /usr/bin/env -i -C $WD ${ENVS[*]} $CMDLINE" 2>"$W/serve.log" &
SRV=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done
check "GET /healthz" curl -sf "$URL/healthz"
PID1=$(pgrep -P "$SRV")
check_eq "server is PID 1 of its namespace" 1 "$(awk '/^NSpid/ {print $3}' "/proc/$PID1/status")"
check_eq "server runs as uid ${USERSPEC%%:*}" "${USERSPEC%%:*}" "$(awk '/^Uid/ {print $2}' "/proc/$PID1/status")"
HC=$(jq -r '.healthcheck | map(@sh) | join(" ")' "$IMG")
check "HEALTHCHECK command passes inside the image" \
  chroot --userspec="$USERSPEC" "$R" /usr/bin/env -i "${ENVS[@]}" sh -c "$HC"
check "GET /readyz" curl -sf "$URL/readyz"
MODEL=$(curl -s "$URL/models" | jq -r '.models[0].name')
"$MK" "$W/tone.wav" wav16 16000 1 1.0 tone 440
check_eq "POST /classify?model=$MODEL" 200 \
  "$(curl -s -o "$W/out.json" -w '%{http_code}' --data-binary @"$W/tone.wav" -H 'Content-Type: audio/wav' "$URL/classify?model=$MODEL")"
check "classify answer has predictions" jq -e '.predictions | length > 0' "$W/out.json"
echo "     VmRSS of the serving process: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$PID1/status")"
# docker stop: SIGTERM to PID 1, which must drain and exit 0.
kill -TERM "$PID1"
wait "$SRV"
check_eq "SIGTERM to PID 1: exit status" 0 "$?"
SRV=""
check "SIGTERM to PID 1: drained" grep -q '"event":"shutdown_complete"' "$W/serve.log"
check_eq "nothing logged as an error" "" "$(grep -v '"event":"request"' "$W/serve.log" | grep '"error"')"
finish
