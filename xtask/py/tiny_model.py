#!/usr/bin/env python3
"""Writes a tiny Llama-architecture model that real vLLM serves on a CPU: `tiny_model.py OUT [SEED]`.

No model can be downloaded where the tests run, so this makes one from nothing, the same bytes
for the same seed (a test pins the digest of the output):
- weights: `LlamaForCausalLM` with random weights from `torch.manual_seed(SEED)`; head_dim 64
  (vLLM's CPU attention kernels refuse 16), 2 attention and 2 key/value heads so tensor
  parallelism over 2 nodes splits them evenly;
- tokenizer: a byte-level BPE trained on the lines below (`tokenizers`), with a chat template so
  `/v1/chat/completions` works.
It runs in the venv of `cargo xtask vllm` (torch, transformers, tokenizers, safetensors).
Files are written to a temporary folder next to OUT and renamed into place: nothing half-written.
"""
import json
import os
import shutil
import sys

# The lines the tokenizer learns from: enough for a few hundred merges.
TEXT = [
    "sparkctl runs large models across several DGX Spark boxes over RoCE.",
    "Two nodes, two rails, one cluster description and one image recipe.",
    "The head waits for every worker, then vLLM serves the model.",
    "Hello! How can I help you today?",
    "The quick brown fox jumps over the lazy dog.",
    "ping pong ping pong",
    "user assistant system",
]
VOCAB = 512
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(TEXT, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", chat_template=CHAT_TEMPLATE
    )


def model(seed, vocab):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=1,
        torch_dtype="bfloat16",
        tie_word_embeddings=False,
    )
    # bfloat16, the dtype vLLM serves it in on the CPU (no conversion at load).
    return LlamaForCausalLM(cfg).to(torch.bfloat16).eval()


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: tiny_model.py OUT [SEED]", file=sys.stderr)
        sys.exit(2)
    out = os.path.abspath(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    tmp = f"{out}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tok = tokenizer()
    tok.save_pretrained(tmp)
    model(seed, len(tok)).save_pretrained(tmp, safe_serialization=True)
    # What the files were made from, for people reading the folder.
    with open(os.path.join(tmp, "MADE_BY.json"), "w") as f:
        json.dump({"generator": "xtask/py/tiny_model.py", "seed": seed}, f, sort_keys=True)
        f.write("\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
