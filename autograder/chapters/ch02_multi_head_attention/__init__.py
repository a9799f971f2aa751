"""Chapter 2, Multi-head attention: solutions/02_multi_head_attention.ipynb."""
