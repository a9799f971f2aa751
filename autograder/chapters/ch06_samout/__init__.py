"""Chapter 6, SamOut: a running maximum instead of attention: solutions/06_samout.ipynb."""
