"""What every layer builds on: errors, atomic file writes, argument checks, the format table, the output layout,
provenance, the z-normalisation and the novelty score. Imports nothing else of ecgcnn (and nothing heavy)."""
