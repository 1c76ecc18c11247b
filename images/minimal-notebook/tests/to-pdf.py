""""Download as PDF": `jupyter nbconvert --to pdf` (nbconvert's LaTeX template through XeTeX)
turns a notebook with a title, math, code and its output into a PDF."""
import subprocess

import nbformat as f

notebook = f.v4.new_notebook(
    cells=[
        f.v4.new_markdown_cell("# A title\n\nEuler: $e^{i\\pi} + 1 = 0$"),
        f.v4.new_code_cell("print(6 * 7)", outputs=[f.v4.new_output("stream", name="stdout", text="42\n")]),
    ]
)
f.write(notebook, "doc.ipynb")
result = subprocess.run(["jupyter", "nbconvert", "--to", "pdf", "doc.ipynb"], capture_output=True, text=True)
assert result.returncode == 0, result.stderr[-3000:]
with open("doc.pdf", "rb") as pdf:
    head = pdf.read(5)
assert head == b"%PDF-", head
print("doc.pdf written")
