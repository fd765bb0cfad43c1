"""The training method: one model per method, grouped in families.

Each method carries only its own fields (a discriminated union on ``name``), so a DPO job
cannot hold ``num_generations`` and a GRPO job cannot hold ``beta`` for a preference loss.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Union, get_args

from ptsdk.errors import brief
from ptsdk.spec.base import SpecModel
from pydantic import Field, field_validator

# `reward.py:score` (a file, relative to the job file; spaces allowed, not at either end of a name,
# no control characters) or `package.module:score`.
REWARD_REF = re.compile(
    r"^(?P<target>(?!\s)[^:\x00-\x1f\x7f]*[^:\s\x00-\x1f\x7f/]\.py|[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)"
    r":(?P<fn>[A-Za-z_]\w*)\Z"
)


class _Method(SpecModel):
    family: ClassVar[str]


class SFT(_Method):
    family: ClassVar[str] = "sft"
    name: Literal["sft"] = Field(description="Supervised fine-tuning on demonstrations.")
    loss_on: Literal["all", "completion"] = Field(
        "completion",
        description="Tokens the loss is computed on: 'completion' = the completion of prompt/completion "
        "records or the assistant turns of chat records; 'all' = every token.",
    )


# --- pairwise and unpaired preference optimization ---------------------------------

DpoLoss = Literal[
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
]
DPO_LOSSES: tuple[str, ...] = get_args(DpoLoss)


class DPO(_Method):
    family: ClassVar[str] = "preference"
    name: Literal["dpo"] = Field(description="Direct Preference Optimization.")
    beta: float = Field(0.1, gt=0, description="Strength of the implicit KL penalty to the reference model.")
    loss_type: DpoLoss = Field("sigmoid", description="DPO loss variant.")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Assumed label-noise rate (robust / cDPO).")


class IPO(_Method):
    family: ClassVar[str] = "preference"
    name: Literal["ipo"] = Field(description="Identity Preference Optimization.")
    beta: float = Field(0.1, gt=0, description="IPO tau: the regularization strength.")


class ORPO(_Method):
    family: ClassVar[str] = "preference"
    name: Literal["orpo"] = Field(description="Odds-Ratio Preference Optimization (no reference model).")
    beta: float = Field(0.1, gt=0, description="Weight of the odds-ratio term (lambda in the paper).")


class SimPO(_Method):
    family: ClassVar[str] = "preference"
    name: Literal["simpo"] = Field(description="Simple Preference Optimization (length-normalized, no reference).")
    beta: float = Field(2.0, gt=0, description="Reward scale.")
    gamma: float = Field(0.5, ge=0, description="Target reward margin (gamma in the paper).")
    sft_weight: float = Field(0.0, ge=0, description="Weight of an added NLL term on chosen answers (CPO-SimPO).")


class CPO(_Method):
    family: ClassVar[str] = "preference"
    name: Literal["cpo"] = Field(description="Contrastive Preference Optimization.")
    beta: float = Field(0.1, gt=0, description="Preference loss temperature.")
    loss_type: Literal["sigmoid", "hinge", "ipo"] = Field("sigmoid", description="CPO loss variant.")
    sft_weight: float = Field(1.0, ge=0, description="Weight of the NLL term on chosen answers (cpo_alpha).")


class KTO(_Method):
    family: ClassVar[str] = "unpaired_preference"
    name: Literal["kto"] = Field(description="Kahneman-Tversky Optimization on unpaired good/bad labels.")
    beta: float = Field(0.1, gt=0, description="Strength of the KL penalty to the reference model.")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight of desirable (label=true) examples.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight of undesirable examples.")


# --- online RL ----------------------------------------------------------------------

GrpoLoss = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]
GRPO_LOSSES: tuple[str, ...] = get_args(GrpoLoss)


class _OnlineRL(_Method):
    family: ClassVar[str] = "rl"
    num_generations: int = Field(8, description="Completions sampled per prompt (the group size).")
    max_prompt_length: int | None = Field(
        512,
        ge=1,
        description="Prompt tokens kept (longer prompts are left-truncated or, with data.truncation=drop, dropped). "
        "null: no limit, for frameworks that allow it (those that size buffers by it refuse null).",
    )
    max_completion_length: int = Field(256, ge=1, description="Most tokens generated per completion.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the rollouts.")
    kl_coef: float = Field(0.0, ge=0, description="KL penalty to the reference policy (0 = no reference model).")
    kl_placement: Literal["loss", "reward"] = Field(
        "loss",
        description="Where the KL penalty goes: 'loss' adds kl_coef x KL to the policy loss; 'reward' subtracts it "
        "from each token's reward before advantages are computed.",
    )
    kl_estimator: Literal["k1", "k2", "k3"] = Field(
        "k3",
        description="Per-token KL estimator (Schulman's naming): k1 = log-ratio, k2 = half its square, "
        "k3 = ratio - 1 - log-ratio (unbiased, always positive; vERL's low_var_kl is k3 clipped).",
    )
    rollout_batch_size: int | None = Field(
        None,
        ge=1,
        description="Prompts generated per rollout. Each rollout's rollout_batch_size x num_generations "
        "completions are split into optimizer steps of training.global_batch_size; unset: one step per rollout "
        "(global_batch_size / num_generations prompts).",
    )
    epochs_per_rollout: int = Field(
        1, ge=1, description="Passes over each rollout's completions before generating again (PPO epochs)."
    )
    clip_epsilon: float = Field(0.2, gt=0, lt=1, description="PPO-style ratio clipping range.")
    rewards: list[str] = Field(
        default=[],
        description="Reward functions as 'file.py:function' (relative to the job file) or 'module:function'. "
        "Each is called as fn(prompts, completions, **columns) and returns one float per completion.",
    )
    reward_model: str | None = Field(
        None, description="Hub id or local path of a sequence-classification reward model."
    )

    @field_validator("rewards")
    @classmethod
    def _reward_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            if not REWARD_REF.match(ref):
                raise ValueError(
                    f"{brief(ref)} is not a reward function reference; write 'file.py:function' or 'module:function'"
                )
        return refs


class GRPO(_OnlineRL):
    name: Literal["grpo"] = Field(description="Group Relative Policy Optimization.")
    loss_type: GrpoLoss = Field("grpo", description="GRPO loss aggregation variant.")


class PPO(_OnlineRL):
    name: Literal["ppo"] = Field(description="Proximal Policy Optimization with a learned value model (GAE).")
    num_generations: int = Field(1, description="Completions sampled per prompt.")
    kl_coef: float = Field(0.05, ge=0, description="KL penalty to the reference policy.")
    kl_placement: Literal["loss", "reward"] = Field("reward", description="Where the KL penalty goes (see GRPO).")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k1", description="Per-token KL estimator (see GRPO).")
    critic_learning_rate: float | None = Field(
        None, gt=0, lt=1, description="Learning rate of the value model (critic); unset: the policy's."
    )
    gamma: float = Field(1.0, gt=0, le=1, description="Discount factor of the GAE advantage estimate.")
    lam: float = Field(0.95, ge=0, le=1, description="Lambda of the GAE advantage estimate (bias-variance trade-off).")


class RLOO(_OnlineRL):
    name: Literal["rloo"] = Field(description="REINFORCE Leave-One-Out.")
    num_generations: int = Field(4, description="Completions sampled per prompt (>= 2: the leave-one-out baseline).")
    kl_coef: float = Field(0.05, ge=0, description="KL penalty to the reference policy.")
    kl_placement: Literal["loss", "reward"] = Field("reward", description="Where the KL penalty goes (see GRPO).")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k1", description="Per-token KL estimator (see GRPO).")


class ReinforcePP(_OnlineRL):
    name: Literal["reinforce_pp"] = Field(description="REINFORCE++ (global advantage normalization).")
    num_generations: int = Field(1, description="Completions sampled per prompt.")
    kl_coef: float = Field(0.01, ge=0, description="KL penalty to the reference policy.")
    kl_placement: Literal["loss", "reward"] = Field("reward", description="Where the KL penalty goes (see GRPO).")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k1", description="Per-token KL estimator (see GRPO).")


MethodSpec = Annotated[
    Union[SFT, DPO, IPO, ORPO, SimPO, CPO, KTO, GRPO, PPO, RLOO, ReinforcePP],
    Field(discriminator="name"),
]

# Methods whose advantage is computed within a group of completions of one prompt.
GROUP_METHODS = frozenset({"grpo", "rloo"})
METHOD_NAMES = ("sft", "dpo", "ipo", "orpo", "simpo", "cpo", "kto", "grpo", "ppo", "rloo", "reinforce_pp")


def loss_variant(method: _Method) -> str | None:
    """The loss variant a method asks for, if the method has variants."""
    return getattr(method, "loss_type", None)
