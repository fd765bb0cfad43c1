"""Build a tiny Llama and its own byte-level BPE tokenizer, offline (no model hub).

    <python with transformers> examples/make_tiny_model.py [OUT_DIR] [--force]   # default examples/tiny-model

Also writes OUT_DIR-lora-init/: an untrained LoRA adapter for same-start comparisons.

The tokenizer's chat template marks assistant turns with {% generation %} so that
assistant-only loss works; the model has about 0.1M parameters and trains on a CPU in seconds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
SPECIAL = ["<pad>", "<s>", "<|end|>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'user' %}<|user|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n"
    "{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


#: The data files the tokenizer learns from, named: a data file added later must not change the vocabulary (and
#: with it every test's tiny model and the numbers that compare frameworks on it); byte-level BPE encodes any
#: text all the same.
TOKENIZER_DATA = (
    "chat_train.jsonl",
    "kto_train.jsonl",
    "pref_train.jsonl",
    "qa_train.jsonl",
    "rl_train.jsonl",
    "sft_eval.jsonl",
    "sft_train.jsonl",
)


def corpus() -> list[str]:
    """The tokenizer learns from the bundled data, so its merges fit the task."""
    lines = []
    for path in (HERE / "data" / name for name in TOKENIZER_DATA):
        for row in map(json.loads, path.read_text().splitlines()):
            lines.extend(str(v) for v in row.values() if isinstance(v, str))
    return lines + ["<|user|>\nWhat is 1 + 2?<|end|>\n<|assistant|>\n3<|end|>\n"]


def build_tokenizer(vocab_size: int = 320):  # type: ignore[no-untyped-def]
    """The byte-level BPE tokenizer trained on the bundled data, with the tiny chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|end|>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[4:],
        model_max_length=512,
        padding_side="right",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build(out: Path, vocab_size: int = 320, seed: int = 0) -> Path:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_lora_init(model_dir: Path, out: Path, seed: int = 0) -> Path:
    """An untrained LoRA adapter (r 8, alpha 16, all linear layers): a shared starting point for
    comparing frameworks, which initialize fresh adapters differently."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), config).save_pretrained(out)
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(args[0]) if args else HERE / "tiny-model"
    lora = target.with_name(target.name + "-lora-init")
    if (target / "config.json").exists() and "--force" not in sys.argv:
        print(f"tiny model already at {target}")
    else:
        print(f"tiny model written to {build(target)}")
    if not (lora / "adapter_config.json").exists() or "--force" in sys.argv:
        print(f"untrained LoRA adapter written to {build_lora_init(target, lora)}")
