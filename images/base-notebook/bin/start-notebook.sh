#!/bin/bash
# Starts the notebook server through start.sh: JupyterLab by default (DOCKER_STACKS_JUPYTER_CMD:
# lab, notebook, server), on 0.0.0.0:${JUPYTER_PORT:-8888}, with token authentication.
#
# JupyterHub's spawners set JUPYTERHUB_API_TOKEN: the single-user server starts instead.
# Kubeflow sets NB_PREFIX: the server answers under that base URL, asks no token (Kubeflow's
# authenticating proxy decides who reaches it) and may be framed by pages of its own origin
# and of FRAME_ANCESTORS. Extra server options: NOTEBOOK_ARGS, or arguments to this script.
set -e

if [ -n "${JUPYTERHUB_API_TOKEN:-}" ]; then
    echo "start-notebook.sh: JUPYTERHUB_API_TOKEN is set: starting the JupyterHub single-user server" >&2
    exec /usr/local/bin/start-singleuser.sh "$@"
fi

args=(--no-browser --ServerApp.ip=0.0.0.0 "--ServerApp.port=${JUPYTER_PORT:-8888}")
if [ -n "${NB_PREFIX:-}" ]; then
    echo "start-notebook.sh: NB_PREFIX=$NB_PREFIX: serving under it without a token (the platform's proxy authenticates)" >&2
    csp="frame-ancestors 'self' ${FRAME_ANCESTORS:-}"
    args+=(
        "--ServerApp.base_url=$NB_PREFIX"
        --IdentityProvider.token=
        --ServerApp.password=
        "--ServerApp.tornado_settings={\"headers\": {\"Content-Security-Policy\": \"${csp% }\"}}"
    )
fi

# shellcheck disable=SC2086
exec /usr/local/bin/start.sh jupyter "${DOCKER_STACKS_JUPYTER_CMD:-lab}" "${args[@]}" ${NOTEBOOK_ARGS:-} "$@"
