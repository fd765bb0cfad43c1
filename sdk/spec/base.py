"""Shared base for every spec model: strict, documented, no unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """A part of the job spec. Unknown keys are errors, never silently dropped; NaN and infinity are
    refused for every number (no hyperparameter means them, and frameworks fail on them late)."""

    model_config = ConfigDict(
        extra="forbid", validate_default=True, frozen=False, use_attribute_docstrings=False, allow_inf_nan=False
    )
