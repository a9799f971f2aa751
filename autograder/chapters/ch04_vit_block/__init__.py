"""Chapter 4, A Vision Transformer block: solutions/04_vit_block.ipynb."""
