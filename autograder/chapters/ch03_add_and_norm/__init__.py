"""Chapter 3, Add & Norm: solutions/03_add_and_norm.ipynb."""
