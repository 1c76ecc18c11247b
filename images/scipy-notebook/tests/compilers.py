"""Cython with a C compiler: a function compiled at run time (pyximport, as `%%cython` does) gives
the known answer; numba compiles one too."""
import os
import sys
import tempfile

import numba
import pyximport

folder = tempfile.mkdtemp()
with open(os.path.join(folder, "squares.pyx"), "w", encoding="utf-8") as source:
    source.write("def total(int n):\n    cdef long s = 0\n    cdef int i\n    for i in range(n):\n        s += i * i\n    return s\n")
sys.path.insert(0, folder)
pyximport.install(build_dir=os.path.join(folder, "build"), language_level=3)
import squares  # noqa: E402

assert squares.total(10) == 285, squares.total(10)
assert squares.__file__.endswith(".so"), squares.__file__


@numba.njit
def total(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


assert total(10) == 285
print("cython and numba compiled")
