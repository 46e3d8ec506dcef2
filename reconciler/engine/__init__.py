"""The pure core: rendering, diffing, planning, risk and gate decisions. No I/O lives here."""
