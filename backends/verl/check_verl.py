"""vERL's own validation of a ptsdk translation, run by ptsdk's check harness in vERL's environment.

request: Backend.check_request (workdir holding the written plan, args = the Hydra overrides, launcher)
plus "kind" ("sft" | "rl") and "data_spec". In order:

1. Hydra composes the overrides against vERL's own config (``sft_trainer_engine`` or ``ppo_trainer``):
   an unknown key fails ("not in struct").
2. RL: ``verl.utils.config.validate_config`` (batch arithmetic, micro batches, critic), then the
   algorithm, rollout (and critic) sections converted to vERL's dataclasses. SFT: the model, engine,
   optimizer and checkpoint sections converted the way ``SFTTrainer._build_config`` does.
3. What vERL lets through unchecked, against its own registries: the advantage estimator, the policy
   loss, the rollout engine, the FSDP strategy, the logger backends.
4. The data converted by verl_data.py (bad records by line) and loaded by vERL's own dataset class (the first
   SFT row's tokens and loss mask, the first RL prompt, come back for the tests).
5. The KL penalties the config turns on, computed by vERL's ``kl_penalty``; the optimizer and learning-rate
   schedule its FSDP engine builds from the optim section (betas, eps, the cosine floor).
   With images (RL): the model's processor as vERL's own ``hf_processor`` loads it (None for a class vERL does not
   support: an error naming it), vERL's image reader ``qwen_vl_utils`` (an error when the environment lacks it:
   every image row would fail), and the converted rows through vERL's RLHFDataset with a processor
   (``__getitem__``: its <image> placeholders expanded into image parts, counted against the row's files), the
   first row's ``raw_prompt`` coming back for the tests.
6. RL: the bridged reward loaded by vERL's reward loader (``get_custom_reward_fn``) and called on a sample;
   a reward model loaded as vERL's reward loop loads it (``HFModelConfig``: a sequence-classification
   model whose tokenizer renders prompt + completion), its serving engine checked.
"""

from __future__ import annotations

import json
from typing import Any

VERSIONS = ("verl", "transformers", "torch", "ray", "hydra-core", "omegaconf", "datasets")

ROLLOUT_ENGINES = ("vllm", "sglang", "trtllm")  # what vERL's rollout registry builds
FSDP_STRATEGIES = ("fsdp", "fsdp2")
RM_ENGINES = ("vllm", "sglang")  # what vERL's reward loop scores a discriminative reward model with


def unchecked_values(cfg: Any, kind: str) -> list[str]:
    """Values vERL accepts at compose time and only fails on (or silently misreads) later."""
    from verl.utils.tracking import Tracking

    out = [
        f"trainer.logger: {b!r} is not one of vERL's loggers {Tracking.supported_backend}"
        for b in cfg.trainer.logger
        if b not in Tracking.supported_backend
    ]
    if kind == "sft":
        if cfg.engine.strategy not in FSDP_STRATEGIES:
            out.append(f"engine.strategy: {cfg.engine.strategy!r} is not one of {FSDP_STRATEGIES}")
        return out
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY, AdvantageEstimator

    estimators = {e.value for e in AdvantageEstimator} | set(ADV_ESTIMATOR_REGISTRY)
    if cfg.algorithm.adv_estimator not in estimators:
        out.append(
            f"algorithm.adv_estimator: {cfg.algorithm.adv_estimator!r} is not one of vERL's {sorted(estimators)}"
        )
    actor = cfg.actor_rollout_ref.actor
    if actor.policy_loss.loss_mode not in POLICY_LOSS_REGISTRY:
        out.append(
            f"actor_rollout_ref.actor.policy_loss.loss_mode: {actor.policy_loss.loss_mode!r} is not one of "
            f"{sorted(POLICY_LOSS_REGISTRY)}"
        )
    if cfg.actor_rollout_ref.rollout.name not in ROLLOUT_ENGINES:
        out.append(
            f"actor_rollout_ref.rollout.name: {cfg.actor_rollout_ref.rollout.name!r} is not one of {ROLLOUT_ENGINES}"
        )
    rm = cfg.reward.reward_model
    if rm.enable and rm.rollout.name not in RM_ENGINES:
        # vERL's RewardLoopWorker scores with vLLM's /classify or SGLang's embeddings; trtllm raises.
        out.append(f"reward.reward_model.rollout.name: {rm.rollout.name!r} cannot serve a reward model: {RM_ENGINES}")
    for section in ("actor_rollout_ref.actor", "critic"):
        strategy = cfg.actor_rollout_ref.actor.strategy if section.endswith("actor") else cfg.critic.strategy
        if strategy not in FSDP_STRATEGIES:
            out.append(f"{section}.strategy: {strategy!r} is not one of {FSDP_STRATEGIES}")
    return out


def validate_rl(cfg: Any) -> list[str]:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    use_critic = need_critic(cfg)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=use_critic)
    omega_conf_to_dataclass(cfg.algorithm)
    omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    if cfg.reward.reward_model.enable:  # the reward model's engine, converted as vERL's RolloutReplica does
        omega_conf_to_dataclass(cfg.reward.reward_model.rollout)
    if use_critic:
        omega_conf_to_dataclass(cfg.critic)
    return []


def kl_probe(cfg: Any) -> dict[str, Any]:
    """Each KL penalty the config turns on, computed by vERL's own ``core_algos.kl_penalty`` (which raises on a name
    it does not know) for a policy and reference whose log-probs differ by 0.5 and by 30 (the clip at work)."""
    import torch
    from verl.trainer.ppo.core_algos import kl_penalty

    actor, algo = cfg.actor_rollout_ref.actor, cfg.algorithm
    used = {}
    if actor.use_kl_loss:
        used["loss"] = (actor.kl_loss_type, actor.kl_loss_coef)
    if algo.use_kl_in_reward:
        used["reward"] = (algo.kl_penalty, algo.kl_ctrl.kl_coef)
    logprob, ref = torch.tensor([[-1.0, -1.0]]), torch.tensor([[-1.5, -31.0]])
    return {
        where: {"name": name, "coef": float(coef), "values": kl_penalty(logprob, ref, name)[0].tolist()}
        for where, (name, coef) in used.items()
    }


def optimizer_probe(section: Any) -> dict[str, Any]:
    """The optimizer and schedule vERL's FSDP engine builds from an optim section (``build_optimizer`` and its
    ``_build_lr_scheduler`` rule) over 10 steps without warmup: AdamW's betas/eps and the lr ratio at each step."""
    import torch
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.torch_functional import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup
    from verl.workers.config.optimizer import build_optimizer

    config = omega_conf_to_dataclass(section)
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    if config.lr_scheduler_type == "cosine":
        scheduler = get_cosine_schedule_with_warmup(
            optimizer, 0, 10, min_lr_ratio=config.min_lr_ratio, num_cycles=config.num_cycles
        )
    else:
        scheduler = get_constant_schedule_with_warmup(optimizer, 0)
    ratios = []
    for _ in range(11):
        ratios.append(optimizer.param_groups[0]["lr"] / config.lr)
        optimizer.step()
        scheduler.step()
    group = optimizer.param_groups[0]
    return {"class": type(optimizer).__name__, "betas": list(group["betas"]), "eps": group["eps"], "lr_ratios": ratios}


def check_reward_model(cfg: Any, sample: dict[str, Any]) -> dict[str, Any]:
    """The reward model as vERL's RewardModelManager and RewardLoopWorker load it: HFModelConfig (its config
    and tokenizer), a sequence-classification head for the engine's /classify, and the chat template its
    tokenizer applies to prompt + completion before scoring."""
    from verl.workers.config import HFModelConfig

    rm = cfg.reward.reward_model
    model = HFModelConfig(path=rm.model_path)
    architectures = list(getattr(model.hf_config, "architectures", None) or [])
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(
            f"method.reward_model: {rm.model_path} is a {architectures or 'model without architectures'}, "
            "not a sequence-classification model (vERL scores it through the engine's classification head)"
        )
    chat = [*list(sample["prompt"]), {"role": "assistant", "content": str(sample["reward_model"]["ground_truth"])}]
    text = model.tokenizer.apply_chat_template(chat, add_generation_prompt=False, tokenize=False)
    return {"architecture": architectures[0], "num_labels": model.hf_config.num_labels, "prompt_chars": len(text)}


def validate_sft(cfg: Any, local_model: bool) -> list[str]:
    from verl.utils.config import omega_conf_to_dataclass

    for section in ("engine", "optim", "checkpoint"):
        omega_conf_to_dataclass(cfg[section])
    if local_model:  # HFModelConfig loads the model's config and tokenizer
        omega_conf_to_dataclass(cfg.model)
    return []


def image_processor(model: str) -> tuple[Any, list[str], dict[str, Any]]:
    """(the processor vERL's RLHFDataset gets, errors, what was found) for an images job. vERL loads it with its own
    hf_processor (verl/workers/config/model.py:162), which returns None, with a warning, for a class it does not
    support (verl/utils/tokenizer/tokenizer.py:236-246). The rows are still built with the model's AutoProcessor
    then, so the check shows what vERL's dataset makes of them; the run would stop on the first image."""
    import importlib.util
    import warnings

    from verl.utils.tokenizer import hf_processor

    errors: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        processor = hf_processor(model, trust_remote_code=False)
    found: dict[str, Any] = {"verl_processor": type(processor).__name__ if processor is not None else None}
    if processor is None:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(model)
        why = next((str(w.message) for w in caught if "processor" in str(w.message).lower()), "no processor")
        errors.append(
            f"model.name_or_path: vERL's hf_processor does not load {type(processor).__name__} ({why}; "
            "verl/utils/tokenizer/tokenizer.py:182-246), so its dataset stops on the first image "
            "(rl_dataset.py:323); use a Qwen2-VL, Qwen2.5-VL, Qwen3-VL, GLM-4V, GLM-4.6V, Mllama or Gemma4 model"
        )
    found["processor"] = type(processor).__name__
    missing = [name for name in ("qwen_vl_utils", "torchvision") if importlib.util.find_spec(name) is None]
    if missing:
        errors.append(
            f"data.images: vERL reads every image with qwen_vl_utils (verl/utils/dataset/rl_dataset.py:442, 491; "
            f"vision_utils.py:23), which needs torchvision; this vERL environment lacks {' and '.join(missing)}: "
            "install qwen-vl-utils and the torchvision built for its torch there"
        )
    found["missing_packages"] = missing
    found["loaded_by_verl"] = found["verl_processor"] is not None
    return processor, errors, found


def image_prompt_inputs(processor: Any, raw_prompt: list[dict[str, Any]]) -> dict[str, Any]:
    """The first row's prompt rendered by the processor's chat template and tokenized with its pictures by vERL's
    build_multimodal_processor_inputs, as its agent loop does before generating (agent_loop.py:284-330); the pictures
    are opened with PIL here, where vERL's loop reads them with qwen_vl_utils (which may resize them)."""
    from PIL import Image
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    parts = [p for m in raw_prompt if isinstance(m["content"], list) for p in m["content"]]
    pictures = [Image.open(p["image"]).convert("RGB") for p in parts if p.get("type") == "image"]
    text = processor.apply_chat_template(raw_prompt, add_generation_prompt=True, tokenize=False)
    inputs = build_multimodal_processor_inputs(processor, text=[text], images=pictures)
    shapes = {k: list(v.shape) for k, v in inputs.items() if hasattr(v, "shape") and k != "input_ids"}
    return {"text": text, "tokens": int(inputs["input_ids"].shape[-1]), "mm_inputs": shapes}


def image_rows(cfg: Any, dataset: Any, spec: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(errors, the first row's raw_prompt): every converted row through RLHFDataset.__getitem__, which expands
    its <image> placeholders into {type: image, image: PATH} parts and asserts they match the row's files."""
    key, errors = spec["images"]["key"], []
    first: list[dict[str, Any]] = []
    for i in range(len(dataset)):
        files = list(dataset.dataframe[i][key] or [])
        try:
            raw = dataset[i]["raw_prompt"]
        except (AssertionError, TypeError, ValueError) as exc:
            errors.append(f"data.train.path: converted row {i + 1}: vERL's RLHFDataset refused it: {exc}")
            continue
        parts = [p for m in raw if isinstance(m["content"], list) for p in m["content"] if p.get("type") == "image"]
        if [p.get("image") for p in parts] != files:
            errors.append(f"data.train.path: converted row {i + 1}: image parts {parts} do not match its {files}")
        if not first:
            first = [dict(m) for m in raw]
        if len(errors) >= 20:
            break
    if cfg.data.image_key != key:
        errors.append(f"data.image_key: {cfg.data.image_key!r}, but the converted rows hold their images in {key!r}")
    return errors, first


def load_data(cfg: Any, kind: str, spec: dict[str, Any] | None = None, processor: Any = None) -> dict[str, Any]:
    """The converted training data through vERL's own dataset class; returns a sample for the reward check. SFT's
    first row is the file's first record, wherever the layout for vERL's sampler put it (`spec`: verl_data.json)."""
    from verl.utils import hf_tokenizer

    model = cfg.model.path if kind == "sft" else cfg.actor_rollout_ref.model.path
    tokenizer = hf_tokenizer(model, trust_remote_code=False)
    if kind == "sft":
        from verl.trainer.sft_trainer import create_sft_dataset

        dataset = create_sft_dataset(
            cfg.data.train_files, cfg.data, tokenizer, None, max_samples=cfg.data.train_max_samples
        )
        from verl_data import file_row_positions

        item = dataset[file_row_positions(spec, len(dataset))[0] if spec else 0]
        assert int(item["loss_mask"].sum()) > 0, "the first record has no token to train on"
        # The first row as vERL's dataset tokenizes it (and the text it decodes to): what the trainer trains on.
        ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
        return {
            "rows": len(dataset),
            "first_row": {
                "input_ids": ids,
                "loss_mask": mask,
                "text": tokenizer.decode(ids),
                "trained_text": tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m]),
            },
        }
    from verl.trainer.ppo.utils import create_rl_dataset

    dataset = create_rl_dataset(
        cfg.data.train_files, cfg.data, tokenizer, processor, max_samples=cfg.data.train_max_samples
    )
    if not len(dataset):
        return {"rows": 0, "sample": None, "dataset": dataset}
    return {"rows": len(dataset), "sample": dataset.dataframe[0], "dataset": dataset}


def score_sample(cfg: Any, sample: dict[str, Any]) -> dict[str, float]:
    """The reward of two completions of the first prompt: its ground truth, and an empty answer."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    fn = get_custom_reward_fn(cfg)
    if fn is None:
        raise ValueError("reward.custom_reward_function.path: vERL found no reward function")
    truth = sample["reward_model"]["ground_truth"]
    scores = {}
    for name, completion in (("ground_truth", str(truth)), ("empty", "")):
        score = fn(sample["data_source"], completion, truth, sample["extra_info"])
        scores[name] = float(score["score"] if isinstance(score, dict) else score)
    return scores


def check(request: dict[str, Any]) -> dict[str, Any]:
    from verl_data import compose, convert  # copied into the workdir with the plan

    kind = request["kind"]
    out: dict[str, Any] = {"errors": [], "notes": []}
    cfg = compose(kind, list(request["args"]))
    out["errors"] += validate_sft(cfg, request["local_model"]) if kind == "sft" else validate_rl(cfg)
    out["errors"] += unchecked_values(cfg, kind)
    try:
        if kind == "rl":
            out["kl"] = kl_probe(cfg)
        optim = cfg.optim if kind == "sft" else cfg.actor_rollout_ref.actor.optim
        out["optimizer"] = optimizer_probe(optim)
        if kind == "rl" and cfg.critic.enable:
            out["critic_optimizer"] = optimizer_probe(cfg.critic.optim)
    except (NotImplementedError, ValueError, TypeError, AssertionError) as exc:
        out["errors"].append(f"vERL's KL or optimizer code refused the config: {type(exc).__name__}: {exc}")
    counts, data_errors = convert(request["data_spec"])
    out["errors"] += data_errors
    out["rows"] = counts
    if data_errors or not request["local_model"]:
        if not request["local_model"]:
            out["notes"].append("the model is not a local folder: the data was converted but not tokenized")
        return out
    with open(request["data_spec"]) as f:
        spec = json.load(f)
    processor = None
    if spec.get("images"):
        processor, image_errors, out["images"] = image_processor(cfg.actor_rollout_ref.model.path)
        out["errors"] += image_errors
    loaded = load_data(cfg, kind, spec, processor)
    out["dataset_rows"] = loaded["rows"]
    if kind == "sft":
        out["first_row"] = loaded["first_row"]
    elif loaded["sample"] is not None:  # the first prompt as vERL's RLHFDataset holds it (before its chat template)
        out["first_prompt"] = [dict(m) for m in loaded["sample"]["prompt"]]
    if spec.get("images") and loaded["rows"]:
        row_errors, out["first_raw_prompt"] = image_rows(cfg, loaded["dataset"], spec)
        out["errors"] += row_errors
        if out["images"]["loaded_by_verl"] and not row_errors:
            out["first_prompt_inputs"] = image_prompt_inputs(processor, out["first_raw_prompt"])
    if loaded["rows"] != counts["train"] and not cfg.data.train_max_samples > 0:
        out["errors"].append(
            f"data.train.path: vERL's dataset holds {loaded['rows']} rows, {counts['train']} were written"
        )
    if loaded.get("sample") is None and kind == "rl":
        return out
    if kind == "rl" and cfg.reward.custom_reward_function.path:
        out["sample_scores"] = score_sample(cfg, loaded["sample"])
    if kind == "rl" and cfg.reward.reward_model.enable:
        out["reward_model"] = check_reward_model(cfg, loaded["sample"])
    return out
