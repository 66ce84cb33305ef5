"""Which examples are held out, and which of each split `--limit` keeps.

Membership is a function of an example's identity, never of `--limit` or `--seed`, so that no prepare
run can put a model's training example into a held-out set (issue 27):

- a source with its own split (a table's `split` column) keeps it;
- a built-in task uses its fixed split — the one the built-in models were trained around
  (`zoo/tiny.py` takes the same `split_indices(n, 0.2, 0)`), so their held-out images are never
  theirs to have seen;
- any other source holds out an example when a hash of (source name, example key) falls below
  `eval_fraction`, as dataset libraries split by hash: adding or removing examples moves none of the
  others between the splits.

The validation split (`val.jsonl`, issue 38) is carved from the examples that are not held out, the
same way for every source: an example is validation when a second hash of (source name, its image)
falls below `val_fraction` — so it too is a function of the example alone, disjoint from both other
splits, and unmoved by `--limit` or `--seed`. Examples that share an image (several questions about
one picture) are hashed by the image, so an image never straddles two splits.

`--limit` then samples within each split, in proportion to the splits' sizes, as the first k of a
`--seed`ed permutation of each pool: for one seed, a smaller limit's held-out (and validation) set is
part of a larger one's; another seed draws another sample and order, from the same pools.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mfcli.data.tasks import split_indices

BUILTIN_SPLIT_SEED = 0  # the built-in tasks' fixed split (tiny's recipe: split_seed 0)
BUILTIN_EVAL_FRACTION = 0.2  # ... at EMT's 20 % (Appendix D.1); a larger fraction reaches tiny's training data
TRAIN_NAMES = frozenset({"train", "training"})
EVAL_NAMES = frozenset({"eval", "evaluation", "test", "val", "valid", "validation", "dev", "heldout", "held-out"})


def hash_unit(name: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by (name, key): blake2b, not Python's salted hash()."""
    digest = hashlib.blake2b(f"{name}\0{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def group_keys(keys: list[str], images: list[str | None]) -> list[str]:
    """The unit a split is carved by: an example's own key, or its image's where several examples share
    one image (so the questions about one picture fall on one side)."""
    from collections import Counter

    shared = Counter(i for i in images if i is not None)
    return [f"image:{img}" if img is not None and shared[img] > 1 else key for key, img in zip(keys, images)]


def held_out(name: str, keys: list[str], own: list[str | None], eval_fraction: float,
             builtin: bool) -> np.ndarray:
    """A boolean per example: True where it is held out. `keys` are the examples' group keys
    (`group_keys`); `own` is the source's own split per example (None where it has none)."""
    n = len(keys)
    if builtin:
        mask = np.zeros(n, dtype=bool)
        mask[split_indices(n, eval_fraction, BUILTIN_SPLIT_SEED)[1]] = True
        return mask
    u = np.array([hash_unit(name, k) for k in keys])
    mask = u < eval_fraction
    given = [i for i, s in enumerate(own) if s is not None]
    for i in given:
        mask[i] = own[i] in EVAL_NAMES
    free = np.array([own[i] is None for i in range(n)])
    # a small source can hash every example to one side; then the extreme hash crosses over (still a
    # function of the examples, and only where the split would otherwise be empty)
    if free.any() and not mask.any():
        mask[np.flatnonzero(free)[np.argmin(u[free])]] = True
    if free.any() and mask.all():
        mask[np.flatnonzero(free)[np.argmax(u[free])]] = False
    return mask


VAL_SALT = "\0validation"  # the validation hash's salt: independent of the held-out hash


def validation(name: str, keys: list[str], held: np.ndarray, val_fraction: float) -> np.ndarray:
    """A boolean per example: True where it is carved for validation — of the examples not held out,
    those whose (name, group key) hash falls below `val_fraction` (0: none)."""
    if val_fraction <= 0:
        return np.zeros(len(keys), dtype=bool)
    u = np.array([hash_unit(name + VAL_SALT, k) for k in keys])
    return ~held & (u < val_fraction)


def limited(mask: np.ndarray, limit: int | None, seed: int,
            val: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the kept (train, held-out, validation) examples, each sorted: all of them without a
    limit, else a sample of each split in proportion to its size (at least one held-out example, and
    one validation example where there are any)."""
    val = np.zeros(len(mask), dtype=bool) if val is None else val
    train_pool, eval_pool, val_pool = np.flatnonzero(~mask & ~val), np.flatnonzero(mask), np.flatnonzero(val)
    if limit is None or limit >= len(mask):
        return train_pool, eval_pool, val_pool
    n_eval = min(len(eval_pool), max(1, round(limit * len(eval_pool) / len(mask))))
    n_val = min(len(val_pool), max(1 if len(val_pool) else 0, round(limit * len(val_pool) / len(mask))))
    n_train = min(len(train_pool), limit - n_eval - n_val)
    # one generator per pool, so a pool's order does not depend on another's size or on the limit
    train = np.random.default_rng([seed, 0]).permutation(train_pool)[:n_train]
    held = np.random.default_rng([seed, 1]).permutation(eval_pool)[:n_eval]
    chosen = np.random.default_rng([seed, 2]).permutation(val_pool)[:n_val]
    return np.sort(train), np.sort(held), np.sort(chosen)
