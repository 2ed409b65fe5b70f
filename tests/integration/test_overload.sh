#!/usr/bin/env bash
# test_overload.sh AUDIOCLASS SOURCE_DIR - the short version of tests/stress/overload.sh for
# `make test`: 400 uploads from 32 clients against a 4-clip queue (see that script).
exec bash "$(realpath "$2")/tests/stress/overload.sh" "$1" "$2" 400 32
