"""Real computations with known answers, one per library."""
import math
import os
import tempfile

import h5py
import numpy as np
import pandas as pd
import scipy.integrate
import statsmodels.api as sm
import sympy
from sklearn.linear_model import LinearRegression

# numpy: a linear system.
assert np.allclose(np.linalg.solve([[3, 1], [1, 2]], [9, 8]), [2, 3])
# scipy: the integral of sin over [0, pi] is 2.
value, _ = scipy.integrate.quad(math.sin, 0, math.pi)
assert abs(value - 2) < 1e-9, value
# pandas: group and sum.
frame = pd.DataFrame({"team": ["a", "b", "a", "b"], "score": [1, 2, 3, 4]})
assert frame.groupby("team")["score"].sum().to_dict() == {"a": 4, "b": 6}
# scikit-learn and statsmodels recover y = 2x + 1 exactly.
x = np.arange(10, dtype=float)
y = 2 * x + 1
model = LinearRegression().fit(x.reshape(-1, 1), y)
assert np.isclose(model.coef_[0], 2) and np.isclose(model.intercept_, 1)
fit = sm.OLS(y, sm.add_constant(x)).fit()
assert np.allclose(fit.params, [1, 2])
# sympy: the integral of x^2 over [0, 3] is exactly 9.
s = sympy.Symbol("x")
assert sympy.integrate(s**2, (s, 0, 3)) == 9
# h5py: a round trip through a file.
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "data.h5")
    with h5py.File(path, "w") as f:
        f["squares"] = np.arange(5) ** 2
    with h5py.File(path, "r") as f:
        assert list(f["squares"][:]) == [0, 1, 4, 9, 16]
print("all known answers")
