"""Where results go and how often things are logged, saved and evaluated."""

from __future__ import annotations

from typing import Literal

from ptsdk.spec.base import SpecModel
from pydantic import Field


class OutputSpec(SpecModel):
    dir: str = Field("runs", description="Parent folder of run directories (relative to the working directory).")
    logging_steps: int = Field(1, ge=1, description="Log metrics every N optimizer steps.")
    save_steps: int | None = Field(None, ge=1, description="Checkpoint every N steps; unset saves only at the end.")
    save_total_limit: int | None = Field(2, ge=1, description="Checkpoints kept on disk.")
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate every N steps (needs data.eval or data.eval_split)."
    )
    saves_per_epoch: int | None = Field(
        None, ge=1, description="Checkpoint N times per pass over the training data, instead of save_steps."
    )
    evals_per_epoch: int | None = Field(
        None, ge=1, description="Evaluate N times per pass over the training data, instead of eval_steps."
    )
    report_to: list[Literal["tensorboard", "wandb", "mlflow", "trackio"]] = Field(
        default=[], description="Experiment trackers besides ptsdk's own metrics.jsonl."
    )
