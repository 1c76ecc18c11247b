#!/bin/bash
# Starts the JupyterHub single-user server through start.sh. The spawner provides its settings
# (JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_URL, ...); extra options: NOTEBOOK_ARGS or arguments.
set -e
# shellcheck disable=SC2086
exec /usr/local/bin/start.sh jupyterhub-singleuser ${NOTEBOOK_ARGS:-} "$@"
