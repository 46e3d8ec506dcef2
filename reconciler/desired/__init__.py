"""The desired state: document models, the loader that reads them from a tree, and validation."""
