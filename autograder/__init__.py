"""The course's autograder: notebook loader, hidden pytest graders, misconception catalogue, CLI.

    from autograder import load_notebook
    nb = load_notebook("solutions/01_self_attention.ipynb")
    nb.scaled_dot_product_attention, nb.problems
"""

from autograder.loader import LoadedNotebook, Problem, load_notebook

__all__ = ["load_notebook", "LoadedNotebook", "Problem"]
