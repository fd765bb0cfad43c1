"""Shared base for every spec model: strict, documented, no unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """A part of the job spec. Unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False, use_attribute_docstrings=False)
