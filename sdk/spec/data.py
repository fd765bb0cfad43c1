"""Training data: where it is and which canonical record format it holds."""

from __future__ import annotations

from typing import Literal

from ptsdk.errors import brief
from ptsdk.spec.base import SpecModel
from pydantic import Field, field_validator

# The canonical record formats and the fields each one has (optional ones marked).
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "preference": ("prompt", "chosen", "rejected"),
    "unpaired_preference": ("prompt", "completion", "label"),
    "prompt": ("prompt", "ground_truth"),
    "instruction": ("instruction", "input", "output"),
}

RecordFormat = Literal["messages", "prompt_completion", "preference", "unpaired_preference", "prompt", "instruction"]

# Which formats each method family reads; the first is the default.
FAMILY_FORMATS: dict[str, tuple[RecordFormat, ...]] = {
    "sft": ("prompt_completion", "messages", "instruction"),
    "preference": ("preference",),
    "unpaired_preference": ("unpaired_preference",),
    "rl": ("prompt",),
}

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")

#: The most images one record may name (data.images.max_per_record's ceiling): every one becomes hundreds of
#: tokens in a vision-language model, and preflight opens each.
MAX_IMAGES_PER_RECORD = 64


class DataSource(SpecModel):
    path: str = Field(
        min_length=1,
        description="A local .jsonl/.json/.parquet file (relative to the job file) or a hub dataset id.",
    )
    split: str = Field("train", description="Split to read when path is a hub dataset.")
    subset: str | None = Field(
        None,
        min_length=1,
        description="Configuration (subset) of a hub dataset that has several, e.g. 'main' for openai/gsm8k.",
    )
    max_samples: int | None = Field(None, ge=1, description="Use only the first N records.")

    @property
    def is_local(self) -> bool:
        return self.path.endswith(LOCAL_SUFFIXES)


class ImageSpec(SpecModel):
    """Images in the records: a column of local image files, one list per record."""

    column: str = Field(
        "images",
        min_length=1,
        description="Column holding each record's images: a list of local image file paths (relative to root). "
        "Message contents may then be strings (the images go before the first user turn's text) or lists of "
        "parts, {type: text, text: ...} and {type: image}, one image part per listed image, filled in order. "
        "A record without the column may instead name each file in its part: {type: image, path: FILE}.",
    )
    root: str | None = Field(
        None,
        min_length=1,
        description="Folder relative image paths are under (relative to the job file); unset: the folder of the "
        "data file that names them.",
    )
    max_per_record: int = Field(
        8,
        ge=1,
        le=MAX_IMAGES_PER_RECORD,
        description="Most images one record may hold; preflight refuses records with more.",
    )


class DataSpec(SpecModel):
    train: DataSource = Field(description="Training data.")
    eval: DataSource | None = Field(None, description="Evaluation data (optional).")
    format: RecordFormat | None = Field(
        None,
        description="Canonical record format of the data; unset means the method family's default "
        "(sft: prompt_completion, pairwise preference: preference, kto: unpaired_preference, RL: prompt). "
        "instruction (SFT): Alpaca records (instruction, optional input, output), the prompt rendered with the "
        "Alpaca template ('Below is an instruction that describes a task...'), the loss on the output.",
    )
    eval_split: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Hold out this fraction of the training records for evaluation (a seeded split) instead of "
        "a separate data.eval.",
    )
    columns: dict[str, str] = Field(
        default={},
        description="Canonical field -> column name in the source, for data whose columns are named differently.",
    )
    message_keys: dict[Literal["role", "content", "thinking"], str] = Field(
        default={},
        description="Key names inside each message, where the data's differ from role/content: e.g. ShareGPT's "
        "{role: from, content: value}. thinking: the key holding an assistant turn's reasoning, passed to the chat "
        "template as reasoning_content.",
    )
    role_names: dict[str, Literal["system", "user", "assistant", "tool"]] = Field(
        default={},
        description="Role values in the data -> canonical roles, e.g. {human: user, gpt: assistant}.",
    )
    prompt_in_answers: bool = Field(
        False,
        description="Preference records without a prompt column whose chosen and rejected are whole "
        "conversations starting with the same prompt turns: the shared leading turns are the prompt.",
    )
    images: ImageSpec | None = Field(
        None,
        description="The records hold images (a vision-language job): where their files are listed. The model "
        "must come with a processor (processor_config.json or preprocessor_config.json beside its config). "
        "Unset: a text-only job, and an images column in the data is refused rather than silently ignored.",
    )
    max_length: int = Field(
        1024,
        ge=8,
        description="Longest tokenized sequence (prompt plus answer) kept. Online RL reads "
        "method.max_prompt_length and method.max_completion_length instead.",
    )
    truncation: Literal["truncate", "drop"] = Field(
        "truncate",
        description="What happens to longer sequences (for online RL: prompts longer than "
        "method.max_prompt_length): cut, or dropped from the data.",
    )

    @field_validator("message_keys", "role_names")
    @classmethod
    def _nonempty_names(cls, mapping: dict[str, str]) -> dict[str, str]:
        for key, value in mapping.items():
            if not key or not value:
                raise ValueError("names must be non-empty strings")
        return mapping

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        known = sorted({f for fields in RECORD_FIELDS.values() for f in fields})
        for key in columns:
            if key not in known:
                raise ValueError(f"unknown canonical field {brief(key)}; canonical fields are {', '.join(known)}")
        return columns
