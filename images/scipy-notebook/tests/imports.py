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
    "altair": "altair",
    "beautifulsoup4": "bs4",
    "bokeh": "bokeh",
    "bottleneck": "bottleneck",
    "cloudpickle": "cloudpickle",
    "cython": "Cython",
    "dask": "dask.dataframe",
    "distributed": "distributed",
    "dill": "dill",
    "ipympl": "ipympl",
    "jupyterlab-git": "jupyterlab_git",
    "numba": "numba",
    "numexpr": "numexpr",
    "openpyxl": "openpyxl",
    "protobuf": "google.protobuf",
    "scikit-image": "skimage",
    "sqlalchemy": "sqlalchemy",
    "tables": "tables",
    "xlrd": "xlrd",
}
for distribution, module in PROMISED.items():
    importlib.import_module(module)
    print(f"{distribution} {importlib.metadata.version(distribution)}")
