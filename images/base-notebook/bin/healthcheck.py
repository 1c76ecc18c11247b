#!/usr/bin/env python3
"""The image's HEALTHCHECK: healthy when a running Jupyter server answers its `api` endpoint.

Reads the servers' runtime files (`jpserver-*.json`) of every user under /home and of
JUPYTER_RUNTIME_DIR, so it works whoever the server runs as and whatever NB_PREFIX is. The
request goes straight to the local server, never through HTTP_PROXY/HTTPS_PROXY (set for the
user's own traffic, they would keep the container unhealthy forever).
"""
import glob
import json
import os
import ssl
import sys
import urllib.request

patterns = ["/home/*/.local/share/jupyter/runtime/jpserver-*.json"]
if os.environ.get("JUPYTER_RUNTIME_DIR"):
    patterns.append(os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], "jpserver-*.json"))
# No proxy handler: the environment's proxy settings are not read.
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
servers = [path for pattern in patterns for path in glob.glob(pattern)]
if not servers:
    sys.exit("no running Jupyter server found")
for path in servers:
    try:
        with open(path, encoding="utf-8") as runtime:
            server = json.load(runtime)
        scheme = "https" if server.get("secure") else "http"
        url = f"{scheme}://127.0.0.1:{server['port']}{server.get('base_url', '/')}api"
        opener = direct
        if scheme == "https":  # its own certificate (GEN_CERT): not one a CA signed
            unverified = urllib.request.HTTPSHandler(context=ssl._create_unverified_context())
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), unverified)
        with opener.open(url, timeout=3) as answer:
            if answer.status == 200:
                print(f"{url}: {answer.status}")
                sys.exit(0)
    except (OSError, ValueError, KeyError) as error:
        print(f"{path}: {error}", file=sys.stderr)
sys.exit("no Jupyter server answered")
