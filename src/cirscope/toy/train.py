"""Train the toy CLIP on the shapes world.

Run ``python -m cirscope.toy.train --help``. The recipe (also in MODEL_CARD.md):

* **Architecture** ``cirscope-toy`` (``cirscope-toy.json``, registered with open_clip and
  created by ``open_clip.create_model``): a ModifiedResNet image tower (layers 1-2-2-1,
  width 16, 64 px) and a 3-layer, 128-wide text transformer (context 24), embedding 128.
* **Data**: a pool of shapes-world images, half "render" and half "photo", drawn from a
  world with **one deliberate bias: 75% of stars are yellow** (every other attribute
  balanced). Each image gets one text per step from varied templates ("a large red star
  on a black background", "a red star", "a big star on a grey backdrop", "something not
  blue") and, for 40% of texts, an edit ("a red star on black, paint it blue") that is
  true of the image, phrased with the *training* phrasings of ``_phrasings.py`` (verb and
  noun synonyms, word orders, negations, comparatives; held-out phrasings never used).
* **Reporting bias**: people name what is unusual and leave the usual unsaid. For a share
  ``--reporting`` of texts a yellow star (the typical star) is described without its colour
  ("a star on black") and a star of another colour with it ("a red star on black"); other
  items are described as always.
* **Loss**: a symmetric contrastive loss whose target mixes the pairing (each text's own
  image, weight ``--pair-weight``, as in CLIP) with the multi-positive target spread evenly
  over every image in the batch the text is true of (the world's ground truth decides,
  negations included), and likewise for images; learnable temperature (CLIP's init,
  1/0.07). The pairing term is what lets the reporting bias shape the model: "a star" is
  mostly written for yellow stars, so it learns to prefer them, as CLIP learns from its
  captions.
* **Optimiser**: AdamW (lr 2e-3, betas .9/.98, weight decay .1 on matrices only),
  100 warm-up steps then cosine decay; seeded; only the token rows that the world's
  texts use are trained (a compact table, expanded to open_clip's 49,408 rows on save).
* Validation on a fresh *balanced* world every ``--eval-every`` steps; the best
  checkpoint by the worst attribute's zero-shot accuracy is kept; training stops early
  once every attribute reaches ``--target`` (not before ``--min-steps``).
* ``--init FILE`` starts from saved weights instead (``--freeze-image`` then trains the text
  tower only; ``--keep last`` keeps the last checkpoint): a cheap way to teach the shipped
  model new phrasings; the model card says which run produced the shipped file.
* ``--device auto`` (the default) trains on a CUDA GPU when torch sees one, else on the CPU.
  ``python -m cirscope.toy.train --device cpu --threads 1`` retrains the shipped weights bit
  for bit; the device and ``--threads`` are part of a run's recipe (torch's sums, hence the
  weights, depend on them: a GPU run gives other tensors than a CPU run).
  ``--recipe v1`` trains on the earlier, smaller template set (:mod:`cirscope.toy._texts_v1`)
  that produced the weights shipped before these (``--device cpu --threads 2``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from cirscope.datasets._shapes import ATTRIBUTES, Bias, WorldSpec, render_array, sample_world
from cirscope.toy._evaluate import star_bias, zero_shot_accuracy
from cirscope.toy._texts import ATTR_NAMES
from cirscope.toy._weights import MODEL_NAME, WEIGHTS_PATH, read_meta, register_config, save_weights

TRAIN_BIAS = Bias(when={"shape": "star"}, then={"color": "yellow"}, p=0.75)


def training_world() -> WorldSpec:
    """The world the toy model is trained on: balanced except 75% of stars are yellow."""
    return WorldSpec(biases=[TRAIN_BIAS], sources={"render": 1.0, "photo": 1.0})


#: Training texts per recipe: the module giving ``sample_text`` and ``every_text_word``.
RECIPES: dict[str, str] = {"phrasings": "cirscope.toy._texts", "v1": "cirscope.toy._texts_v1"}


def _codes(df) -> np.ndarray:
    return np.stack([df[a].map({v: i for i, v in enumerate(ATTRIBUTES[a])}).to_numpy() for a in ATTR_NAMES], axis=1)


def _code_of(attr: str, value: str) -> int:
    return ATTRIBUTES[attr].index(value)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m cirscope.toy.train", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=192)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, default=50_000, help="training images rendered up front")
    p.add_argument("--val", type=int, default=1200, help="validation images (balanced world)")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--target", type=float, default=0.985, help="stop once every attribute reaches this")
    p.add_argument("--min-steps", type=int, default=None,
                   help="never stop early before this step (default: 1000; 800 with --recipe v1)")
    p.add_argument("--max-minutes", type=float, default=90.0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--init", type=Path, default=None,
                   help="start from a saved cirscope-toy weights file (fine-tuning) instead of random weights")
    p.add_argument("--keep", choices=("best", "last"), default="best",
                   help="keep the checkpoint with the best worst-attribute accuracy, or the last one")
    p.add_argument("--freeze-image", action="store_true", help="train the text tower only (with --init)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to train: auto (a CUDA GPU when one is available, else the CPU), cpu or cuda; "
                        "the shipped weights were trained with --device cpu --threads 1")
    p.add_argument("--recipe", choices=tuple(RECIPES), default="phrasings",
                   help="training texts: the enlarged phrasings (default) or v1, the earlier, smaller template set")
    p.add_argument("--pair-weight", type=float, default=None,
                   help="weight of each text's own image in the loss's target, the rest spread over every image "
                        "the text is true of (default: 0.6; 0 with --recipe v1)")
    p.add_argument("--reporting", type=float, default=None,
                   help="reporting bias: share of descriptions that leave a typical value unsaid (a yellow star's "
                        "colour) and name an unusual one (a red star's) (default: 0.9; not used by --recipe v1)")
    p.add_argument("--drop-share", type=float, default=None,
                   help="share of edits that lose some of the words naming no value (word dropout; default: 0.3; "
                        "not used by --recipe v1)")
    p.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = p.parse_args(argv)
    v1 = args.recipe == "v1"
    if v1 and (args.reporting or args.drop_share is not None):
        p.error("--reporting and --drop-share apply to the enlarged phrasings, not to --recipe v1")
    if args.min_steps is None:
        args.min_steps = 800 if v1 else 1000
    if args.pair_weight is None:
        args.pair_weight = 0.0 if v1 else 0.6
    if args.reporting is None:
        args.reporting = 0.0 if v1 else 0.9
    if args.drop_share is None and not v1:
        args.drop_share = 0.3
    for name in ("pair_weight", "reporting", "drop_share"):
        if getattr(args, name) is not None and not 0.0 <= getattr(args, name) <= 1.0:
            p.error(f"--{name.replace('_', '-')} must be within [0, 1], got {getattr(args, name)}")

    import importlib

    import open_clip
    import torch
    import torch.nn.functional as F

    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is available to torch here (use --device cpu or auto)")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    register_config()
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    texts_module = importlib.import_module(RECIPES[args.recipe])
    every_text_word = texts_module.every_text_word
    if v1:
        sample_text = texts_module.sample_text
    else:
        import functools

        sample_text = functools.partial(texts_module.sample_text, drop_share=args.drop_share, reporting=args.reporting,
                                        typical=[texts_module.Typical(TRAIN_BIAS.when, TRAIN_BIAS.then)])
    if args.init is not None:
        from cirscope.toy._weights import load_toy

        model = load_toy(args.init)[0]
    else:
        model = open_clip.create_model(MODEL_NAME)
    if args.freeze_image:
        model.visual.requires_grad_(False)

    # Compact vocabulary: only the tokens the world's texts use (order kept, so the
    # end-of-text token stays the largest id and argmax pooling still finds it).
    used = np.unique(tokenizer(every_text_word()).numpy())
    lookup = np.zeros(49408, dtype=np.int64)
    lookup[used] = np.arange(used.size)
    full_table = model.token_embedding
    model.token_embedding = torch.nn.Embedding(used.size, full_table.embedding_dim)
    with torch.no_grad():
        rows = full_table.weight[torch.from_numpy(used)].clone()
        fresh = rows.abs().sum(1) == 0  # rows a loaded model never trained (new words)
        rows[fresh] = torch.randn(int(fresh.sum()), rows.shape[1]) * 0.02
        model.token_embedding.weight.copy_(rows)
    lookup_t = torch.from_numpy(lookup)
    model.to(device)  # a no-op on the CPU

    def tokens(texts: list[str]) -> torch.Tensor:
        return lookup_t[tokenizer(texts)].to(device)

    mean = torch.tensor(model.visual.image_mean if hasattr(model.visual, "image_mean") else (0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1).to(device)
    std = torch.tensor(model.visual.image_std if hasattr(model.visual, "image_std") else (0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1).to(device)

    def pixels(batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - mean) / std

    t0 = time.time()
    train_df = sample_world(args.pool, seed=args.seed + 1, spec=training_world())
    train_images = render_array(train_df)
    train_codes = _codes(train_df)
    train_records = train_df[list(ATTR_NAMES)].to_dict("records")
    val_df = sample_world(args.val, seed=args.seed + 2, spec=WorldSpec(sources={"render": 1.0, "photo": 1.0}))
    val_images = render_array(val_df)
    print(json.dumps({"event": "data", "pool": args.pool, "seconds": round(time.time() - t0, 1)}), flush=True)

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and "embedding" not in name else no_decay).append(param)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.98), eps=1e-6,
    )
    warmup = min(100, args.steps // 10 + 1)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    @torch.no_grad()
    def validate() -> dict:
        model.eval()
        emb = torch.cat([model.encode_image(pixels(val_images[i : i + 256]), normalize=True) for i in range(0, len(val_images), 256)]).cpu().numpy()

        def enc(texts: list[str]) -> np.ndarray:
            return model.encode_text(tokens(texts), normalize=True).cpu().numpy()

        acc = zero_shot_accuracy(emb, val_df, enc)
        bias = star_bias(emb, val_df, enc)
        train_mode()
        return {"accuracy": acc, "bias": bias}

    def save(metrics: dict, step: int) -> None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        table = torch.zeros(49408, full_table.embedding_dim)
        table[torch.from_numpy(used)] = state["token_embedding.weight"]
        state["token_embedding.weight"] = table
        meta = {
            "model": MODEL_NAME, "recipe": args.recipe, "step": step, "seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "pool": args.pool, "min_steps": args.min_steps, "target": args.target, "threads": torch.get_num_threads(), "device": device.type, "init": None if args.init is None else args.init.name,
            "freeze_image": args.freeze_image, "keep": args.keep, "pair_weight": args.pair_weight,
            "reporting": args.reporting, "drop_share": args.drop_share,
            "init_meta": None if args.init is None else read_meta(args.init), "vocabulary_tokens": int(used.size), "train_bias": {"when": dict(TRAIN_BIAS.when), "then": dict(TRAIN_BIAS.then), "p": TRAIN_BIAS.p},
            "sources": {"render": 0.5, "photo": 0.5}, "validation": metrics,
            "minutes": round((time.time() - t0) / 60, 1), "torch": torch.__version__, "open_clip": open_clip.__version__,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_weights(state, used, args.out, meta)

    from tqdm.auto import tqdm

    bar = tqdm(total=args.steps, desc="training cirscope-toy", disable=args.quiet, mininterval=5)
    def train_mode() -> None:
        model.train()
        if args.freeze_image:
            model.visual.eval()

    train_mode()
    best = -1.0
    history = []
    step = 0
    for step in range(1, args.steps + 1):
        idx = rng.integers(0, len(train_images), args.batch)
        texts = []
        asserted = np.full((args.batch, len(ATTR_NAMES)), -1)
        excluded = np.full((args.batch, len(ATTR_NAMES)), -1)
        for row, i in enumerate(idx):
            text, attrs, negated = sample_text(train_records[i], rng)
            texts.append(text)
            for a, v in attrs.items():
                asserted[row, ATTR_NAMES.index(a)] = _code_of(a, v)
            for a, v in negated.items():
                excluded[row, ATTR_NAMES.index(a)] = _code_of(a, v)
        codes = train_codes[idx]
        # positive[i, j]: text j is true of image i (what it asserts holds, what it negates does not).
        positive = np.all((asserted[None, :, :] == -1) | (asserted[None, :, :] == codes[:, None, :]), axis=2)
        positive &= np.all(excluded[None, :, :] != codes[:, None, :], axis=2)
        target = torch.from_numpy(positive.astype(np.float32)).to(device)

        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1)
        with torch.set_grad_enabled(not args.freeze_image):
            img = model.encode_image(pixels(train_images[idx]), normalize=True)
        txt = model.encode_text(tokens(texts), normalize=True)
        logits = model.logit_scale.exp().clamp(max=100) * img @ txt.T
        target_i, target_t = target / target.sum(1, keepdim=True), target / target.sum(0, keepdim=True)
        if args.pair_weight:
            own = torch.eye(args.batch, device=device)
            target_i = (1 - args.pair_weight) * target_i + args.pair_weight * own
            target_t = (1 - args.pair_weight) * target_t + args.pair_weight * own
        loss_i = -(target_i * F.log_softmax(logits, 1)).sum(1).mean()
        loss_t = -(target_t * F.log_softmax(logits, 0)).sum(0).mean()
        loss = (loss_i + loss_t) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

        bar.update(1)
        minutes = (time.time() - t0) / 60
        if step % args.eval_every == 0 or step == args.steps or minutes > args.max_minutes:
            metrics = validate()
            worst = min(metrics["accuracy"].values())
            history.append({"step": step, "loss": round(loss.item(), 4), **metrics})
            print(json.dumps({"event": "eval", "step": step, "loss": round(loss.item(), 4), "minutes": round(minutes, 1), **metrics}), flush=True)
            if worst > best or args.keep == "last":
                best = max(best, worst)
                save(metrics, step)
            if (worst >= args.target and step >= args.min_steps) or minutes > args.max_minutes:
                break
        elif step % 25 == 0:
            print(json.dumps({"event": "step", "step": step, "loss": round(loss.item(), 4), "minutes": round(minutes, 2)}), flush=True)
    bar.close()
    return {"best_worst_accuracy": best, "steps": step, "history": history}


if __name__ == "__main__":
    main()
