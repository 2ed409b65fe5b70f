#!/bin/bash
# healthcheck.sh [PATH] - the container's HEALTHCHECK: exit 0 when the local server answers
# GET PATH (default /healthz) with 200. bash's /dev/tcp does the HTTP, so the runtime image
# needs no curl; the port follows AUDIOCLASS_PORT like the server does.
exec 3<>"/dev/tcp/127.0.0.1/${AUDIOCLASS_PORT:-8080}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "${1:-/healthz}" >&3
# Status line "HTTP/1.x 200 OK"; -t so a stuck server fails the check instead of hanging it.
read -r -t 3 _ status _ <&3 && [ "$status" = 200 ]
