"""Chapter 5, The decoder block: solutions/05_decoder_block.ipynb."""
