#!/usr/bin/env python3
"""dev/hf_default_corpus.py: Hugging Face BertForMaskedLM trained on the built-in corpus with the
settings of the default `./train_mlm` (tiny L2-H128, B 32 x T 128, AdamW lr 2e-3, warmup 60,
linear decay, clip 1.0, dropout 0.1, 600 steps), as an independent check of how far the
default run can get in that many steps: if PyTorch's curve stalls where ours does, the stall is
the optimization problem, not a bug in our model or batcher.

    python3 dev/hf_default_corpus.py [steps] [lr] [dropout]

Batches: random windows of T - 2 tokens of the training shard between [CLS] and [SEP] (no
document packing), 15% of positions masked 80/10/10; validation: 20 fixed batches of the
validation shard. Prints validation loss and masked-token accuracy every 100 steps.
"""
import math
import sys
import time

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM


def load_tokens(path):
    """The token array of a token shard (docs/formats.md: 64-byte header, uint16 tokens)."""
    b = open(path, "rb").read()
    n = int.from_bytes(b[32:40], "little")
    width = int.from_bytes(b[12:16], "little")
    return np.frombuffer(b, dtype=np.uint16 if width == 2 else np.uint32, count=n, offset=64).astype(np.int64)


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    lr = float(sys.argv[2]) if len(sys.argv) > 2 else 2e-3
    dropout = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
    torch.manual_seed(0)
    torch.set_num_threads(2)
    train = load_tokens("build/default/mlm/train_000.bin")
    val = load_tokens("build/default/mlm/val_000.bin")
    vocab = [line.rstrip("\n") for line in open("build/default/vocab.txt", encoding="utf-8")]
    V, CLS, SEP, MASK, PAD = len(vocab), vocab.index("[CLS]"), vocab.index("[SEP]"), vocab.index("[MASK]"), vocab.index("[PAD]")
    T, B, warmup = 128, 32, 60
    config = BertConfig(vocab_size=V, hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                        pad_token_id=PAD, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = BertForMaskedLM(config)

    def batch(src, rng):
        starts = rng.integers(0, len(src) - T, B)
        ids = np.stack([np.concatenate([[CLS], src[s:s + T - 2], [SEP]]) for s in starts])
        labels = np.full_like(ids, -100)
        masked = rng.random(ids.shape) < 0.15
        masked[:, 0] = masked[:, -1] = False
        labels[masked] = ids[masked]
        r = rng.random(ids.shape)
        inputs = ids.copy()
        inputs[masked & (r < 0.8)] = MASK
        random_token = masked & (r >= 0.8) & (r < 0.9)
        inputs[random_token] = rng.integers(5, V, random_token.sum())
        return torch.tensor(inputs), torch.tensor(labels)

    rng = np.random.default_rng(0)
    val_batches = [batch(val, np.random.default_rng(123 + i)) for i in range(20)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, eps=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / warmup if s < warmup else max(0.0, (steps - s) / (steps - warmup)))
    unigram = np.bincount(train, minlength=V) / len(train)
    print(f"unigram baseline: loss {-(unigram[unigram > 0] * np.log(unigram[unigram > 0])).sum():.3f}")
    t0 = time.time()
    for step in range(1, steps + 1):
        model.train()
        x, y = batch(train, rng)
        model(input_ids=x, labels=y).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 100 == 0 or step == steps:
            model.eval()
            loss_sum, correct, count = 0.0, 0, 0
            with torch.no_grad():
                for x, y in val_batches:
                    logits = model(input_ids=x).logits
                    m = y != -100
                    loss_sum += torch.nn.functional.cross_entropy(logits[m], y[m], reduction="sum").item()
                    correct += (logits[m].argmax(-1) == y[m]).sum().item()
                    count += m.sum().item()
            print(f"step {step}: val loss {loss_sum / count:.4f}, acc {correct / count:.4f}, "
                  f"ppl {math.exp(loss_sum / count):.1f} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
