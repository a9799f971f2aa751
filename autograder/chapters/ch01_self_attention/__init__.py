"""Chapter 1, Self-attention: solutions/01_self_attention.ipynb."""
