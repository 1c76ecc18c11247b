#!/usr/bin/env python3
"""Starts the JupyterHub single-user server, as in jupyter/docker-stacks: start.sh (the
ENTRYPOINT) has applied the user settings; the spawner provides the rest (JUPYTERHUB_API_TOKEN,
JUPYTERHUB_SERVICE_URL, ...). Extra options: NOTEBOOK_ARGS, or this script's arguments."""
import os
import shlex
import sys

command = ["jupyterhub-singleuser"]
notebook_args = shlex.split(os.environ.get("NOTEBOOK_ARGS", ""))
if not any(arg.startswith(("--ip=", "--ServerApp.ip=")) for arg in notebook_args + sys.argv[1:]):
    command.append("--ip=0.0.0.0")
command += notebook_args + sys.argv[1:]
print("start-singleuser.py: executing " + shlex.join(command), file=sys.stderr)
os.execvp(command[0], command)
