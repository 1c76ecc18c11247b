# The server settings of every notebook image, as in jupyter/docker-stacks
# (/etc/jupyter/jupyter_server_config.py): they apply however the server starts
# (start-notebook.py, `jupyter lab`, a spawner's jupyterhub-singleuser).
# ruff: noqa: F821 (`get_config` is given by Jupyter when it reads this file)
import os
import stat
import subprocess
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

c = get_config()
# Every address, IPv4 and IPv6: reachable through `docker run -p`, a pod's IP or a service.
c.ServerApp.ip = ""
c.ServerApp.open_browser = False
# The port: JUPYTER_PORT (the server reads it itself; the image sets 8888).
# Deleting a file really deletes it (no trash folder filling the home volume).
c.FileContentsManager.delete_to_trash = False

# GEN_CERT set: serve HTTPS with a self-signed certificate made at start.
if "GEN_CERT" in os.environ:
    folder = Path(jupyter_data_dir())
    folder.mkdir(parents=True, exist_ok=True)
    pem = folder / "notebook.pem"
    subprocess.check_call(
        [
            "openssl", "req", "-new", "-newkey", "rsa:2048", "-days", "365", "-nodes", "-x509",
            "-subj", "/C=XX/ST=XX/L=XX/O=generated/CN=generated",
            "-keyout", str(pem), "-out", str(pem),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pem.chmod(stat.S_IRUSR | stat.S_IWUSR)
    c.ServerApp.certfile = str(pem)

# NB_UMASK: the umask of the server and everything it starts (kernels, terminals).
if "NB_UMASK" in os.environ:
    os.umask(int(os.environ["NB_UMASK"], 8))
