"""Results: ``results`` (aggregation and files), ``markdown`` (tables, README sync), ``figures``."""
