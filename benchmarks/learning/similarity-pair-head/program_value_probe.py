"""Probe: does a distance to the goal that reads the state's program beat NMSE?

    python benchmarks/learning/similarity-pair-head/program_value_probe.py \
        TRAIN_TRACES,... EVAL_TRACES,... [steps]

The edit flow's ProgramEncoder reads (x, goal, φ): every node's output beside the goal. A
small head scores the state, trained with a pairwise ranking loss within runs (fewer edits
left, smaller score) on the traced runs of the first list. Every 250 steps it prints, per
evaluation folder, (its mean per-run Spearman with the edits left, NMSE's). A probe, not a
stage: nothing here is shipped or used by the planner.
"""

import sys
import time

import numpy as np
import torch

from flows.encoders import ProgramEncoder, collate_states, encode_state
from simulator.execute import evaluate
from simulator.scoring import nmse, spearman
from simulator.trace_store import load_traces, program_from

torch.manual_seed(0)


def runs_of(folders):
    out = []
    for f in folders:
        for run in load_traces(f):
            t = run["task"]
            X = t["X"].numpy()
            st = run["states"]
            if len(st) < 3:
                continue
            with np.errstate(all="ignore"):
                goal = evaluate(program_from(t["found"]), X)
                if not np.isfinite(goal).all():
                    continue
                enc, d, ln = [], [], []
                for s in st:
                    p = program_from(s["program"])
                    y = evaluate(p, X)
                    if not np.isfinite(y).all():
                        continue
                    try:
                        e = encode_state(p, X, goal)
                    except Exception:
                        continue
                    enc.append(e)
                    d.append(s["distance"])
                    ln.append(float(nmse(y[None], goal)[0]))
            if len(enc) >= 3 and np.ptp(d) > 0:
                out.append((enc, np.array(d, float), np.array(ln)))
    return out


train_f = sys.argv[1].split(",")
eval_f = sys.argv[2].split(",")
t0 = time.time()
train = runs_of(train_f)
evals = {f: runs_of([f]) for f in eval_f}
print(
    "runs",
    len(train),
    {k.split("/")[-1]: len(v) for k, v in evals.items()},
    f"{time.time() - t0:.0f}s",
    flush=True,
)
enc = ProgramEncoder(hidden=64, layers=2)
head = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
params = list(enc.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-5)


def score(states):
    _, pooled = enc(collate_states(states))
    return head(pooled).squeeze(-1)


def evaluate_sets():
    enc.eval()
    res = {}
    with torch.no_grad():
        for k, runs in evals.items():
            rho, rn = [], []
            for states, d, ln in runs:
                s = score(states).numpy()
                rho.append(spearman(s, d))
                rn.append(spearman(ln, d))
            res[k.split("/")[-1]] = (round(float(np.nanmean(rho)), 3), round(float(np.nanmean(rn)), 3))
    enc.train()
    return res


rng = np.random.default_rng(0)
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
for step in range(1, steps + 1):
    batch, groups, dists = [], [], []
    for g, r in enumerate(rng.choice(len(train), 8)):
        states, d, _ = train[r]
        pick = rng.choice(len(states), size=min(8, len(states)), replace=False)
        batch += [states[i] for i in pick]
        groups += [g] * len(pick)
        dists += list(d[pick])
    s = score(batch)
    g = torch.tensor(groups)
    d = torch.tensor(dists)
    closer = (d[:, None] < d[None, :]) & (g[:, None] == g[None, :])
    w = closer.float()
    loss = (torch.nn.functional.softplus((s[:, None] - s[None, :]) / 0.5) * w).sum() / w.sum().clamp_min(1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 250 == 0:
        print(step, round(loss.item(), 3), evaluate_sets(), f"{time.time() - t0:.0f}s", flush=True)
