#!/bin/sh
# The services image's entrypoint: the first argument chooses the process.
#   intake | escalation | notifier | followup | console   one service (python -m services.<name>)
#   kizuki ARGS...                                         the kizuki command
#   anything else                                          run as given
# KIZUKI_FORWARD (the console's container only) starts deploy/cluster/forward.py beside the process.
set -eu
if [ -n "${KIZUKI_FORWARD:-}" ]; then
    python /app/deploy/cluster/forward.py &
fi
case "${1:-}" in
    intake|escalation|notifier|followup|console)
        exec python -m "services.$1" ;;
    kizuki)
        shift
        exec python -m kizuki.cli "$@" ;;
    *)
        exec "$@" ;;
esac
