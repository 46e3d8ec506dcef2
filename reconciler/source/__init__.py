"""The Git source: the only package that touches pygit2."""
