"""The framework source this backend was written against (kept apart from the schema, so that registering
the backend does not build the schema's models: every ptsdk command loads every backend)."""

COMMIT = "7ea279abfbeb698b092856d0dab61e7cf39bc909"  # tests check it is schema.py's (which transcribe.py writes)
