"""A matplotlib (and seaborn) figure renders, headless, to a PNG of non-trivial size."""
import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

x = np.linspace(0, 2 * np.pi, 200)
fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
left.plot(x, np.sin(x), label="sin")
left.legend()
sns.histplot(np.random.default_rng(0).normal(size=500), ax=right)
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "figure.png")
    fig.savefig(path, dpi=100)
    with open(path, "rb") as png:
        head = png.read(8)
    size = os.path.getsize(path)
assert head == b"\x89PNG\r\n\x1a\n", head
assert size > 10_000, f"the PNG is only {size} bytes"
print(f"figure.png: {size} bytes")
