"""Fingerprint of the tokenized training data, written by every backend's runner into logs/.

Copied into each run directory as ptsdk_fingerprint.py and imported there by code running in the
framework's own environment (it needs only the `datasets` object it is given). Equal hashes mean
two frameworks train on the same token sequences.
"""

from __future__ import annotations

import hashlib
import json
import os


def write_data_fingerprint(dataset, path: str) -> None:  # type: ignore[no-untyped-def]
    """Hash every *input_ids column of the dataset, row by row in order."""
    digest, rows, tokens = hashlib.sha256(), 0, 0
    columns = sorted(c for c in (dataset.column_names or []) if c.endswith("input_ids")) if dataset is not None else []
    for row in dataset.select_columns(columns) if columns else []:
        rows += 1
        for column in columns:
            tokens += len(row[column])
            digest.update(json.dumps(row[column]).encode())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"columns": columns, "rows": rows, "tokens": tokens, "sha256": digest.hexdigest()[:16] if rows else None}, f)
