"""The framework source this backend was written against (kept apart from the schema, so that registering
the backend does not build the schema's models: every ptsdk command loads every backend)."""

COMMIT = "6e77f0b37596ef4d4f31924fbc46eb77d0c8043d"
TORCHTITAN = "0.2.0"
