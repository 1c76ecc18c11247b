#!/bin/bash
# Deprecated name, kept as jupyter/docker-stacks keeps it: start-singleuser.py is the command.
echo "start-singleuser.sh: WARNING: use start-singleuser.py instead" >&2
exec /usr/local/bin/start-singleuser.py "$@"
