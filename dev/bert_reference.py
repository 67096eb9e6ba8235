#!/usr/bin/env python3
"""dev/bert_reference.py: writes the PyTorch reference fixture the C++ model is tested against
(tests/test_model.cpp), in the manner of llm.c's debug state.

A small Hugging Face BertForMaskedLM (random weights, dropout 0) runs one batch with padding, two
token types and masked positions; the fixture holds the config, the weights in wellread's layout
(dev/hf_bert.py), the batch, the logits at the masked positions, the loss, the gradient of every
parameter, and the losses of 10 AdamW steps (torch.optim.AdamW, clipping at 1.0, no weight decay
on biases and LayerNorm). Run: python3 dev/bert_reference.py  (writes tests/fixtures/bert/mlm_reference.bin)
"""
import os
import sys

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_bert  # noqa: E402
import tensor_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "bert", "mlm_reference.bin")

L, C, NH, F, V, P = 2, 32, 4, 64, 211, 24
B, T = 4, 20
LENGTHS = [20, 14, 9, 5]
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01, clip=1.0, steps=10)


def main():
    torch.manual_seed(1234)
    torch.set_default_dtype(torch.float64)  # the reference in double: its own rounding is negligible
    config = BertConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=NH, intermediate_size=F,
                        max_position_embeddings=P, type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12, pad_token_id=0)
    model = BertForMaskedLM(config).double()
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so every gradient path is exercised
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.eval()  # dropout off (the probabilities are 0 anyway)

    g = torch.Generator().manual_seed(99)
    ids = torch.randint(5, V, (B, T), generator=g)
    types = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        ids[b, 0], ids[b, n - 1], ids[b, n:] = 2, 3, 0  # [CLS] ... [SEP] then [PAD]
        types[b, n // 2:n] = 1
        mask[b, :n] = 1
        for t in range(1, n - 1):
            if torch.rand(1, generator=g).item() < 0.3:
                labels[b, t] = ids[b, t]
                ids[b, t] = 4 if torch.rand(1, generator=g).item() < 0.8 else ids[b, t]  # [MASK] mostly
    positions = (labels.view(-1) != -100).nonzero().view(-1)
    targets = labels.view(-1)[positions]

    named = dict(model.named_parameters())
    weights = hf_bert.to_ours({k: v.detach().numpy() for k, v in named.items()}, L)

    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    out.loss.backward()
    grads = hf_bert.to_ours({k: v.grad.numpy() for k, v in named.items()}, L)
    logits = out.logits.view(B * T, V)[positions].detach().numpy()

    # 10 AdamW steps on the same batch, from the same starting weights, with clipping.
    decay = [p for n, p in named.items() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in named.items() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        loss = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels).loss
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), ADAMW["clip"])
        opt.step()
    # the decay groups must agree with wellread's per-tensor flags
    for name in weights:
        hf_names = [hf_bert.GLOBAL_TENSORS.get(name)] if name in hf_bert.GLOBAL_TENSORS else \
            [f"bert.encoder.layer.0.{p}" for p in hf_bert.LAYER_TENSORS[name]]
        assert all((not (n.endswith("bias") or "LayerNorm" in n)) == hf_bert.decays(name) for n in hf_names), name

    fixture = {
        "config": np.array([L, C, NH, F, V, P, 2], dtype=np.int32),
        "input_ids": ids.numpy().astype(np.int32), "token_types": types.numpy().astype(np.int32),
        "lengths": np.array(LENGTHS, dtype=np.int32),
        "masked_positions": positions.numpy().astype(np.int32), "masked_targets": targets.numpy().astype(np.int32),
        "logits": logits, "loss": np.array([out.loss.item()]),
        "adamw.hparams": np.array([ADAMW[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "clip")]),
        "adamw.losses": np.array(losses),
    }
    fixture.update({f"param.{k}": v for k, v in weights.items()})
    fixture.update({f"grad.{k}": v for k, v in grads.items()})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tensor_file.save(OUT, fixture)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes): loss {out.loss.item():.6f}, {len(positions)} masked positions, "
          f"AdamW losses {losses[0]:.5f} -> {losses[-1]:.5f}")


if __name__ == "__main__":
    main()
