"""ART's own validation of a ptsdk translation, run by ptsdk's check harness in ART's environment.

request: Backend.check_request (workdir holding art_config.json and train_art.py). The runner's ``load`` builds what a
run builds: ``art.TrainableModel`` with ``art.dev.InternalModelConfig`` (pydantic's validator of ART's TypedDicts,
``art.dev.validate_dedicated_config``, and the keys ART declares: pydantic ignores unknown TypedDict keys), and
``art.TrainConfig`` / ``art.dev.TrainConfig``. Each reward function is imported as the run imports it.
"""

from __future__ import annotations

from typing import Any

VERSIONS = ("openpipe-art", "pydantic", "openai")


def check(request: dict[str, Any]) -> dict[str, Any]:
    import train_art  # type: ignore[import-not-found]  # the runner beside this script: load() is what a run uses

    loaded = train_art.load(request["config"])
    for ref in loaded.rollout.rewards:
        train_art.reward_function(ref)
    return {
        "model": loaded.model.model_dump(mode="json", include={"name", "project", "base_model", "trainable"}),
        "internal_config": dict(loaded.model._internal_config or {}),
        "train": loaded.train.model_dump(mode="json"),
        "train_options": loaded.train_options,
        "notes": [f"{len(loaded.rollout.rewards)} reward function(s) imported"],
    }
