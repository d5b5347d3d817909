#!/bin/sh
# supervise LOGFILE COMMAND...: run COMMAND, restart it when it exits, stop it on TERM.
# Used where systemd is not the service manager (start-stop-daemon keeps this script's pid).
log="$1"
shift
child=""
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi; exit 0' TERM INT
while true; do
    "$@" >>"$log" 2>&1 &
    child=$!
    wait "$child"
    sleep 2
done
