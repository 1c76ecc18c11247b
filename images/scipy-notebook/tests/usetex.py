"""LaTeX labels in matplotlib (`text.usetex`: latex, dvipng and cm-super) render to a PNG, and
the interactive widget backend (`%matplotlib widget`, ipympl) loads."""
import os
import tempfile

# Its caches (fonts, TeX output) in a folder of its own, not in the shared home folder.
os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp()
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["text.usetex"] = True
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1], [0, 1])
ax.set_title(r"$\int_0^1 x\,dx = \frac{1}{2}$")
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "usetex.png")
    fig.savefig(path, dpi=80)
    assert os.path.getsize(path) > 2000, os.path.getsize(path)
matplotlib.use("module://ipympl.backend_nbagg")
print("usetex and ipympl ok")
