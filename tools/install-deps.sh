#!/bin/sh
# install-deps.sh PKG... - installs the Debian packages that are missing (as root), or
# prints the exact apt-get line to run (as another user). Used by `make`; safe to re-run.
set -eu
missing=""
for p in "$@"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || apt-get update
  apt-get install -y -q --no-install-recommends $missing
else
  echo "missing Debian packages. Run:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
