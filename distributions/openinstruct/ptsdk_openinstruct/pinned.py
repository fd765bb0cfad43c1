"""The framework source this backend was written against (kept apart from the schema, so that registering
the backend does not build the schema's models: every ptsdk command loads every backend)."""

COMMIT = "e6c3044aa6201c8bfa4573c1b03142af599e730d"  # tests check it is schema.py's (which transcribe.py writes)
