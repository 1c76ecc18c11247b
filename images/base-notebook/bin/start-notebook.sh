#!/bin/bash
# Deprecated name, kept as jupyter/docker-stacks keeps it: start-notebook.py is the command.
echo "start-notebook.sh: WARNING: use start-notebook.py instead" >&2
exec /usr/local/bin/start-notebook.py "$@"
