"""What every layer builds on: errors, atomic file writes, argument checks, the format table, the output layout,
provenance, the z-normalisation, the novelty score and giving freed heap memory back. Imports nothing else of ecgcnn
(and nothing heavy)."""
