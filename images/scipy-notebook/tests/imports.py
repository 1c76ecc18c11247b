"""Every package scipy-notebook promises imports; prints each one's version."""
import importlib
import importlib.metadata

PROMISED = {  # distribution: module
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "scikit-learn": "sklearn",
    "statsmodels": "statsmodels",
    "sympy": "sympy",
    "ipywidgets": "ipywidgets",
    "h5py": "h5py",
}
for distribution, module in PROMISED.items():
    importlib.import_module(module)
    print(f"{distribution} {importlib.metadata.version(distribution)}")
