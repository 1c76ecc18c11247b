#!/usr/bin/env python3
"""The default command of every notebook image, as in jupyter/docker-stacks: starts
`jupyter ${DOCKER_STACKS_JUPYTER_CMD:-lab}` (lab, notebook, nbclassic, server) with NOTEBOOK_ARGS
and this script's arguments. start.sh (the ENTRYPOINT) has already applied the user settings;
the listening address, port, certificate (GEN_CERT) and umask come from
/etc/jupyter/jupyter_server_config.py.

- JUPYTERHUB_API_TOKEN set (a JupyterHub spawner): start-singleuser.py runs instead.
- RESTARTABLE=yes: the server runs under run-one-constantly, so it comes back when it exits.
- NB_PREFIX set (Kubeflow): the server answers under that base URL, asks no token (Kubeflow's
  authenticating proxy decides who reaches it) and may be framed by pages of its own origin and
  of FRAME_ANCESTORS.
"""
import json
import os
import shlex
import sys

if "JUPYTERHUB_API_TOKEN" in os.environ:
    print("start-notebook.py: JUPYTERHUB_API_TOKEN is set: starting start-singleuser.py instead", file=sys.stderr)
    command = ["/usr/local/bin/start-singleuser.py", *sys.argv[1:]]
    os.execvp(command[0], command)

command = []
if os.environ.get("RESTARTABLE") == "yes":
    command.append("run-one-constantly")
command += ["jupyter", os.environ.get("DOCKER_STACKS_JUPYTER_CMD", "lab")]

prefix = os.environ.get("NB_PREFIX")
if prefix:
    print(
        f"start-notebook.py: NB_PREFIX={prefix}: serving under it without a token (the platform's proxy authenticates)",
        file=sys.stderr,
    )
    policy = f"frame-ancestors 'self' {os.environ.get('FRAME_ANCESTORS', '')}".strip()
    settings = json.dumps({"headers": {"Content-Security-Policy": policy}})
    command += [
        f"--ServerApp.base_url={prefix}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.tornado_settings={settings}",
    ]

command += shlex.split(os.environ.get("NOTEBOOK_ARGS", ""))
command += sys.argv[1:]
print("start-notebook.py: executing " + shlex.join(command), file=sys.stderr)
os.execvp(command[0], command)
