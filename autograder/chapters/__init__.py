"""One folder per chapter, ``chNN_name`` for the notebook ``solutions/NN_name.ipynb``:

- ``exercises.py``: the title and the exercises (id, graded name, points, what it uses), plain data;
- ``misconceptions.py``: the known wrong ideas (id, hint, the section that teaches it), plain data;
- ``variants.py``: each misconception implemented, so that a check can name the one it sees;
- ``graders.py``: the hidden pytest graders, one test per check, marked with its exercise and points.

``autograder.exercises`` and ``autograder.misconceptions`` read the plain data of every folder.
"""
