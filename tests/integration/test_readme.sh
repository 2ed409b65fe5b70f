#!/usr/bin/env bash
# test_readme.sh AUDIOCLASS SOURCE_DIR - the README's commands run as printed. Every ```sh
# block after a `<!-- readme-test ... -->` line is run, one command a line, in a directory
# laid out like a fresh clone (examples/, models/, build/audioclass), with a server that
# `make run` would start; `localhost:8080` becomes the test server's address. A command
# passes when it exits 0 and prints no JSON error; one that names an example clip must
# print that clip's label (`audioclass decode` excepted: it writes files and prints nothing).
# Every file the README uploads (@path) must exist.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools curl jq python3 node
scratch_dir # T: a temporary folder; PIDS: servers killed on exit (lib.sh)
README=$SRC/README.md

# Every file the README sends with curl (@path) or names under examples/ is in the checkout.
grep -oE '@[A-Za-z0-9_./-]+|examples/[A-Za-z0-9_.-]+\.[A-Za-z0-9]+' "$README" | sed 's/^@//' | sort -u >"$T/files.txt"
check "the README names example files" test -s "$T/files.txt"
while read -r f; do
  check "README file $f exists" test -e "$SRC/$f"
done <"$T/files.txt"

# The marked blocks, one command per line (comment-only and blank lines dropped).
python3 - "$README" >"$T/commands.txt" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
marked = False
inside = False
for line in lines:
    if line.startswith("<!-- readme-test"):
        marked = True
        continue
    if marked and not inside and line.strip() == "```sh":
        inside = True
        continue
    if inside and line.strip() == "```":
        inside = marked = False
        continue
    if inside and line.strip() and not line.strip().startswith("#"):
        print(line)
EOF
N=$(wc -l <"$T/commands.txt")
check "the README marks its commands for this test (>= 8)" test "$N" -ge 8

# A directory laid out like a fresh clone after `make run`.
mkdir -p "$T/clone/build"
ln -s "$SRC/examples" "$T/clone/examples"
ln -s "$SRC/models" "$T/clone/models"
ln -s "$EXE" "$T/clone/build/audioclass"
cd "$T/clone" || exit 1
start readme
export AUDIOCLASS_URL=$URL

i=0
while IFS= read -r cmd; do
  i=$((i + 1))
  run=${cmd//localhost:8080/127.0.0.1:$PORT}
  out=$T/out.$i
  bash -c "$run" </dev/null >"$out" 2>"$out.err"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    bad "README: $cmd (exit $rc: $(head -c 300 "$out.err"))"
    continue
  fi
  if grep -q '"error":{' "$out"; then
    bad "README: $cmd (answered an error: $(head -c 300 "$out"))"
    continue
  fi
  case $cmd in
    *"audioclass decode"*) expect="" ;; # writes files, prints nothing
    *examples/dog.*) expect=dog ;;
    *examples/yes.*) expect=yes ;;
    *) expect="" ;;
  esac
  if [ -n "$expect" ] && ! grep -qw -- "$expect" "$out"; then
    bad "README: $cmd (no \"$expect\" in: $(head -c 300 "$out"))"
    continue
  fi
  ok "README: $cmd"
done <"$T/commands.txt"

# What the commands wrote is what they say.
check "envnet.svg is an SVG" grep -q '<svg' "$T/clone/envnet.svg"
check "envnet-filters.svg (Python client) is an SVG" grep -q '<svg' "$T/clone/envnet-filters.svg"
check "m5-filters.svg (CLI) is an SVG" grep -q '<svg' "$T/clone/m5-filters.svg"
stop >/dev/null
finish
