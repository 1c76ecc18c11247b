"""An R plot in a notebook comes as more than PNG (jupyter.plot_mimetypes, set in Rprofile.site):
the IR kernel executes a cell with a plot, and its output carries PNG, SVG and PDF."""
import nbformat as f
from nbclient import NotebookClient

notebook = f.v4.new_notebook(cells=[f.v4.new_code_cell("plot(1:10)")])
notebook.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
NotebookClient(notebook, timeout=300, kernel_name="ir").execute()
kinds = set()
for output in notebook.cells[0].outputs:
    kinds.update(output.get("data", {}))
for wanted in ("image/png", "image/svg+xml", "application/pdf"):
    assert wanted in kinds, f"{wanted} missing from the plot's outputs: {sorted(kinds)}"
print("plot outputs:", sorted(kinds))
