"""The notebook user's Python is the virtual environment, and it can install into it."""
import os
import sys
import sysconfig

assert sys.prefix == "/opt/venv", sys.prefix
assert sys.version_info[:2] == (3, 11), sys.version
purelib = sysconfig.get_paths()["purelib"]
assert os.access(purelib, os.W_OK), f"{purelib} is not writable by uid {os.getuid()}"
print("venv ok:", sys.prefix, purelib)
