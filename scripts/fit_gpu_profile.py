#!/usr/bin/env python3
"""Fits the engine performance model (src/engine/model/perf_model.h) to measured step times.

Usage: python3 scripts/fit_gpu_profile.py data/profiles/*.json
Prints, for each file, the PerfParams of a GPU profile (src/engine/model/profiles.cc) rounded to
three significant digits and the relative error of every measured point under those rounded
values. Standard library only.

The fit, in two parts (see data/profiles/README.md for the files' fields):
1. Decode steps: step_s + decode_seq_s * batch + attention_token_s * batch * context, by least
   squares on relative errors over every decode_ms[batch][context].
2. Prefills of n tokens, with step_s from part 1: max(prefill_floor_s, pass), where pass is the
   formula's weights read and prompt compute (prefill_token_s * n + prefill_pair_s * n(n+1)/2)
   with a share weights_overlap of the shorter hidden. Each split of the lengths into a short
   group (at the floor) and a long one (on the compute line) is tried: the long group's
   (1 - weights_overlap) * step_s, prefill_token_s and prefill_pair_s by relative least squares
   (the overlap clamped to 0..1), the floor as the short group's relative least-squares constant;
   the split with the smallest sum of squared relative errors wins.
"""
import json
import sys


def solve(rows, ys):
    """Least squares of rows·x ≈ ys via normal equations on column-scaled rows."""
    n = len(rows[0])
    scale = [max(abs(r[j]) for r in rows) or 1.0 for j in range(n)]
    a = [[r[j] / scale[j] for j in range(n)] for r in rows]
    m = [[sum(r[i] * r[j] for r in a) for j in range(n)] for i in range(n)]
    v = [sum(r[i] * y for r, y in zip(a, ys)) for i in range(n)]
    for i in range(n):
        p = max(range(i, n), key=lambda k: abs(m[k][i]))
        m[i], m[p], v[i], v[p] = m[p], m[i], v[p], v[i]
        for k in range(i + 1, n):
            f = m[k][i] / m[i][i]
            m[k] = [mk - f * mi for mk, mi in zip(m[k], m[i])]
            v[k] -= f * v[i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (v[i] - sum(m[i][j] * x[j] for j in range(i + 1, n))) / m[i][i]
    return [xi / s for xi, s in zip(x, scale)]


def relative_lsq(rows, ys):
    """Minimises the sum of ((rows·x - y) / y)^2."""
    return solve([[c / y for c in r] for r, y in zip(rows, ys)], [1.0] * len(ys))


def pairs(n):
    return n * (n + 1) / 2  # (query, key) pairs of a causal prefill of n tokens


def step_duration(p, prefill_tokens=0, prefill_pairs=0, decode_seqs=0, context_tokens=0):
    """The C++ stepDuration, term for term."""
    weights = p["step_s"]
    prompt = p["prefill_token_s"] * prefill_tokens + p["prefill_pair_s"] * prefill_pairs
    pass_s = weights + prompt - p["weights_overlap"] * min(weights, prompt)
    compute = pass_s + p["decode_seq_s"] * decode_seqs + p["attention_token_s"] * context_tokens
    return max(compute, p["prefill_floor_s"] if prefill_tokens > 0 else 0.0)


def points(data):
    """(shape kwargs, measured seconds) for every measured point."""
    for b, row in data["decode_ms"].items():
        for c, ms in row.items():
            yield {"decode_seqs": int(b), "context_tokens": int(b) * int(c)}, ms / 1e3
    for n, ms in data["prefill_ms"].items():
        yield {"prefill_tokens": int(n), "prefill_pairs": pairs(int(n))}, ms / 1e3


def fit(data):
    dec = [(int(b), int(c), ms / 1e3) for b, row in data["decode_ms"].items()
           for c, ms in row.items()]
    step, dseq, att = relative_lsq([[1, b, b * c] for b, c, _ in dec], [t for *_, t in dec])
    pre = sorted((int(n), ms / 1e3) for n, ms in data["prefill_ms"].items())
    best = None
    for k in range(len(pre) - 2):  # the first k lengths at the floor; at least 3 on the line
        short, long_ = pre[:k], pre[k:]
        fixed, b, q = relative_lsq([[1, n, pairs(n)] for n, _ in long_], [t for _, t in long_])
        if not 0 <= fixed <= step:
            fixed = min(max(fixed, 0.0), step)
            b, q = relative_lsq([[n, pairs(n)] for n, _ in long_], [t - fixed for n, t in long_])
        floor = (sum(1 / t for _, t in short) / sum(1 / t**2 for _, t in short)) if short else 0.0
        p = {"step_s": step, "prefill_token_s": b, "prefill_pair_s": q,
             "weights_overlap": 1 - fixed / step, "prefill_floor_s": floor,
             "decode_seq_s": dseq, "attention_token_s": att}
        sse = sum(((step_duration(p, n, pairs(n)) - t) / t) ** 2 for n, t in pre)
        if best is None or sse < best[0]:
            best = (sse, p)
    return best[1]


def main(paths):
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        p = {k: float(f"{v:.3g}") for k, v in fit(data).items()}
        print(f"{path}: {data['gpu']}, {data['model']}")
        print("  {" + ", ".join(f".{k} = {v:.3g}" for k, v in p.items()) + "}")
        for kind in ("decode", "prefill"):
            errors = [(step_duration(p, **shape) - t) / t for shape, t in points(data)
                      if ("decode_seqs" in shape) == (kind == "decode")]
            worst = max(errors, key=abs)
            print(f"  {kind}: max relative error {abs(worst):.1%} ({worst:+.1%}) "
                  f"over {len(errors)} points")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
