"""Train the sentence judge (``rag.answering.judge``) on Q&A sets and write its file.

Pairs: for every question of every set, the extractive answerer's candidate sentences over the
hybrid hits (``ExtractiveAnswerer.score``, as the assistant ranks them). A candidate holding every
key fact (``must_contain``) is a positive, with more such sentences of the first five hits that were
not candidates (three positives at most); up to ``--negatives`` candidates holding none are
negatives, and so are the first ``--negatives`` candidates of an unanswerable question. Multi-part questions are left out (each of
their parts asks something else), and so are answerable questions whose hits state no key fact.

Model: the base multilingual-e5-small (materialized offline), mean-pooled as e5 pools, a linear
head; the first ``--frozen`` layers and the token embeddings stay as they are, the rest train
(AdamW, linear warm-up and decay, positives weighted up to balance the classes, bf16 autocast
on a CPU that computes it). The file holds only what changed (``judge.export``).

    python -m eval.train_judge \\
        --set eval/qa.jsonl .rag/index \\
        --set ../shared/crud-dev/qa.jsonl,eval/crud_unanswerable.jsonl INDEX-OF-CRUD-DEV \\
        [--set FILE[,FILE] INDEX ...] --out rag/answering/judge_e5small.safetensors

The shipped judge was trained this way (3 epochs, 6 frozen layers; ~17 minutes on two cores of the
build machine) on eval/qa.jsonl, crud-dev with eval/crud_unanswerable.jsonl, both natural sets and
held-out pairs 1-5: 7,779 pairs, 1,008 positive. Never train on a set that is to judge it.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from eval.qa import load_qa

#: Candidates of an answerable question that hold no key fact, taken as negatives.
NEGATIVES = 6
#: More positives: sentences of the first hits that hold every key fact but were not candidates.
EXTRA_POSITIVES = 3


def pairs_of(files: list[str], index: str, k: int = 10, negatives: int = NEGATIVES,
             limit: int | None = None) -> list[tuple[str, str, float]]:
    """(question, sentence, label) pairs of the questions of ``files`` over the index at ``index``."""
    from rag import Retriever
    from rag.answering.extractive import ExtractiveAnswerer
    from rag.text import normalize

    retriever = Retriever.load(index)
    answerer = ExtractiveAnswerer(retriever.embedder, query_vector=retriever.query_vector)
    pairs: list[tuple[str, str, float]] = []
    items = [item for path in files for item in load_qa(path)]
    for item in items[:limit]:
        if item.type == "multi":
            continue
        hits = retriever.search(item.question, k=k, mode="hybrid")
        scored = answerer.score(item.question, hits)
        must = [normalize(m) for m in item.must_contain]

        def holds(text: str) -> int:
            return sum(m in normalize(text) for m in must)

        if not item.answerable:
            pairs += [(item.question, s.text, 0.0) for s in scored[:negatives]]
            continue
        positives = [s.text for s in scored if holds(s.text) == len(must)]
        seen = {s.text for s in scored}
        extra = [text for _, _, text in ExtractiveAnswerer.candidates(hits[:5])
                 if text not in seen and holds(text) == len(must)]
        positives += extra[:EXTRA_POSITIVES]
        if not positives:
            continue  # the passages never state it: no positive to learn from, and the negatives are unsure
        pairs += [(item.question, text, 1.0) for text in positives[:EXTRA_POSITIVES]]
        pairs += [(item.question, s.text, 0.0) for s in scored if holds(s.text) == 0][:negatives]
    return pairs


def train(pairs: list[tuple[str, str, float]], out: Path, epochs: float = 3.0, frozen: int = 6, lr: float = 5e-5,
          head_lr: float = 1e-3, batch: int = 32, threads: int | None = None, seed: int = 0) -> None:
    """Fine-tune the judge on ``pairs`` and write it to ``out`` (``judge.export``)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from embeddings.materialize import materialize
    from embeddings.st_embedder import cpu_has_native_bf16
    from rag.answering import judge

    if not pairs:
        raise SystemExit("no training pairs")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    if threads:
        torch.set_num_threads(threads)
    base_dir = materialize()
    with judge.quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        encoder = AutoModel.from_pretrained(str(base_dir), add_pooling_layer=False)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    layers = list(range(frozen, encoder.config.num_hidden_layers))
    for p in encoder.parameters():
        p.requires_grad = False
    trained = [p for i in layers for p in encoder.encoder.layer[i].parameters()]
    for p in trained:
        p.requires_grad = True
    optimizer = torch.optim.AdamW([{"params": trained, "lr": lr}, {"params": list(head.parameters()), "lr": head_lr}],
                                  weight_decay=0.01)
    positives = sum(p[2] for p in pairs)
    pos_weight = torch.tensor((len(pairs) - positives) / max(positives, 1.0))
    steps = max(1, int(len(pairs) / batch * epochs))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, s / warmup) * max(0.0, 1 - s / steps))
    bf16 = cpu_has_native_bf16()
    encoder.train()
    step, t0, loss_avg = 0, time.time(), None
    while step < steps:
        rng.shuffle(pairs)
        # batches of similar length (less padding), in random order
        for g in range(0, len(pairs), batch * 50):
            group = sorted(pairs[g:g + batch * 50], key=lambda p: len(p[0]) + len(p[1]))
            batches = [group[i:i + batch] for i in range(0, len(group), batch)]
            rng.shuffle(batches)
            for b in batches:
                if step >= steps:
                    break
                enc = tokenizer([judge.QUERY_PREFIX + q for q, _, _ in b], [judge.PASSAGE_PREFIX + s for _, s, _ in b],
                                truncation="only_second", max_length=judge.MAX_LENGTH, padding=True,
                                return_tensors="pt")
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                     token_type_ids=enc.get("token_type_ids")).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    logits = head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)
                labels = torch.tensor([y for _, _, y in b])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels,
                                                                            pos_weight=pos_weight)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained + list(head.parameters()), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
                if step % 20 == 0 or step == steps:
                    print(f"step {step}/{steps} loss {loss_avg:.4f} {time.time() - t0:.0f} s", file=sys.stderr,
                          flush=True)
            if step >= steps:
                break
    state = {k: v for k, v in encoder.state_dict().items()}
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    base = load_file(str(Path(base_dir) / "model.safetensors"))
    info = {"base": "intfloat/multilingual-e5-small",
            "trained": f"{time.strftime('%Y-%m-%d')}; {epochs:g} epochs; layers {frozen}-{layers[-1] if layers else '-'} "
                       f"lr {lr:g}, head lr {head_lr:g}; {len(pairs)} pairs, {positives:.0f} positive"}
    judge.export(state, out, base, layers, info)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.train_judge", description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", nargs=2, action="append", metavar=("QA[,QA]", "INDEX"), required=True,
                    help="Q&A file(s) and the index of their documents (repeatable)")
    ap.add_argument("--out", type=Path, required=True, help="the judge file to write")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--frozen", type=int, default=6, help="encoder layers kept as they are (of 12)")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--negatives", type=int, default=NEGATIVES)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="at most this many questions per set (a quick try)")
    args = ap.parse_args(argv)
    pairs = []
    for files, index in args.set:
        found = pairs_of(files.split(","), index, negatives=args.negatives, limit=args.limit)
        print(f"{files}: {len(found)} pairs, {sum(p[2] for p in found):.0f} positive", file=sys.stderr)
        pairs += found
    train(pairs, args.out, epochs=args.epochs, frozen=args.frozen, lr=args.lr, threads=args.threads)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
