"""The framework source this backend was written against (kept apart from the schema, so that registering
the backend does not build the schema's models: every ptsdk command loads every backend)."""

COMMIT = "559b44772e471d1538537b8805cc77f3824a5e64"
