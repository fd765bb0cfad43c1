"""The framework source this backend was written against (kept apart from the schema, so that registering
the backend does not build the schema's models: every ptsdk command loads every backend)."""

COMMIT = "58d393458625ad63ed539f2dcd072c85700c557f"
