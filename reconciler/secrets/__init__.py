"""Secret references, backends, keyed fingerprints and the one redaction path."""
