"""A NeMo RL config as NeMo RL composes it, and its check against the transcribed schema (schema.py).

Composition follows nemo_rl/utils/config.py at the pinned commit: ``defaults`` names the parent configs (paths
relative to the child's folder), merged with OmegaConf (``_override_: true`` replaces a section instead of merging,
``merge_with_override``), then resolved with NeMo RL's resolvers (``register_omegaconf_resolvers``: add, mul, div, max)
and validated as examples/run_*.py does (``MasterConfig(**OmegaConf.to_container(config, resolve=True))``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import ValidationError

from ptsdk_nemorl.schema import MASTER_CONFIGS

RESOLVERS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "max": max,
}


def _register() -> None:
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def _merge(base: DictConfig, child: DictConfig) -> DictConfig:
    for key in list(child.keys()):
        if OmegaConf.is_missing(child, key):
            continue
        value = child[key]
        if isinstance(value, DictConfig) and value.get("_override_", False):
            value.pop("_override_")
            if key in base:
                base.pop(key)
    return cast(DictConfig, OmegaConf.merge(base, child))


def load(path: Path) -> DictConfig:
    """The config at `path` with its ``defaults`` merged in (load_config_with_inheritance)."""
    config = OmegaConf.load(path)
    assert isinstance(config, DictConfig), f"{path}: a NeMo RL config is a mapping"
    if "defaults" not in config:
        return config
    parents = config.pop("defaults")
    names = [str(p) for p in parents] if isinstance(parents, ListConfig) else [str(parents)]
    base = OmegaConf.create({})
    for name in names:
        parent = Path(name) if name.startswith("/") else path.parent / name
        base = _merge(base, load(parent))
    return _merge(base, config)


def resolved(config: DictConfig) -> dict[str, Any]:
    _register()
    return cast(dict[str, Any], OmegaConf.to_container(config, resolve=True))


def problems(config: dict[str, Any], algorithm: str) -> list[str]:
    """`dotted.path: problem` lines of the transcribed MasterConfig for `algorithm` (empty: it passes)."""
    try:
        MASTER_CONFIGS[algorithm](**config)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []


def new_problems(path: Path, algorithm: str) -> tuple[list[str], list[str]]:
    """(problems of the composed config at `path` that its base config alone does not have, the base's own).

    NeMo RL's own example configs do not pass its classes closed to unknown keys (examples/configs/sft.yaml sets
    policy.offload_optimizer_for_logprob, which PolicyConfig does not declare): those are the base's, reported apart.
    """
    merged = problems(resolved(load(path)), algorithm)
    child = OmegaConf.load(path)
    parents = child.get("defaults") if isinstance(child, DictConfig) else None
    base: list[str] = []
    if parents is not None:
        for name in [str(p) for p in parents] if isinstance(parents, ListConfig) else [str(parents)]:
            parent = Path(name) if name.startswith("/") else path.parent / name
            base += problems(resolved(load(parent)), algorithm)
    return [p for p in merged if p not in base], base
