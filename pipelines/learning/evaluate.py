"""``induce evaluate``: every shipped model's quality metrics, each beside its baseline.

One command loads the checkpoints shipped in ``pipelines/checkpoints/`` and recomputes, on fixed seeds, the
figures their model cards report: edit-flow top-k (in distribution and Nguyen-derived),
forward-flow NLL and rank correlation, reverse-flow hit rate, similarity Spearman, and the
decomposition policy's ranking and search beside library order, and what the library's cap
keeps with the recognition model's token costs beside smallest first.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _modules():
    """(name, loader, metrics function, keyword arguments) for each shipped model."""
    from flows.decomposition_policy import DecompositionPolicy
    from flows.edit_flow import EditFlow, edit_flow_metrics
    from flows.forward_flow import ForwardFlow, forward_flow_metrics
    from flows.recognition import Recognition
    from flows.reverse_flow import ReverseFlow
    from similarity.metric import SimilarityModule, similarity_metrics

    return [
        ("edit_flow", EditFlow, edit_flow_metrics),
        ("forward_flow", ForwardFlow, lambda m, seed: forward_flow_metrics(m, n_states=200, seed=seed)),
        ("reverse_flow", ReverseFlow, _reverse_figures),
        ("similarity", SimilarityModule, similarity_metrics),
        ("decomposition_policy", DecompositionPolicy, _decomposition_figures),
        ("recognition", Recognition, _recognition_figures),
    ]


def _reverse_figures(model, seed: int) -> dict:
    """Hole values per point (beside the exact inverse and a broad prior), then whole branches
    through an operator that is not one-to-one (beside the operator's own branches)."""
    from flows.reverse_flow import reverse_flow_metrics
    from simulator.branches import branch_metrics

    return {**reverse_flow_metrics(model, seed=seed), **branch_metrics(model, n=100, seed=seed)}


def _decomposition_figures(model, seed: int) -> dict:
    """The policy's ranking of one step (beside library order), then the whole recursion."""
    from flows.decomposition_policy import decomposition_metrics
    from pipelines.search.decompose import search_metrics

    ranking = decomposition_metrics(model, n=500, seed=seed)
    search = search_metrics(model, n=60, seed=seed)
    return {**ranking, **{f"search_{k}": v for k, v in search.items()}}


def _recognition_figures(model, seed: int) -> dict:
    """The model's ranking of a law's tokens (beside a random order), then what the
    library's cap keeps with its token costs (beside smallest first)."""
    from flows.recognition import library_metrics, recognition_metrics

    ranking = recognition_metrics(model, n=500, seed=seed)
    plain = recognition_metrics(None, n=500, seed=seed)
    library = library_metrics(model, seed=seed)
    return {
        **ranking,
        "random_mean_rank": plain["mean_rank"],
        **{f"library_{k}": v for k, v in library.items()},
    }


def evaluate_all(only: list[str] | None = None, seed: int = 0, checkpoint_dir: str | None = None) -> dict:
    out: dict[str, dict] = {}
    for name, cls, metrics in _modules():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / cls.default_checkpoint
        model = cls.from_pretrained(path)
        figures = metrics(model, seed=seed)
        figures = {k: (round(float(v), 4) if isinstance(v, (int, float)) else v) for k, v in figures.items()}
        figures["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = figures
        print(f"{name}: evaluated in {figures['seconds']} s", file=sys.stderr)
    return out


def format_table(results: dict) -> str:
    lines = []
    for name, figures in results.items():
        lines.append(f"## {name}")
        width = max(len(k) for k in figures)
        lines += [f"  {k:<{width}}  {v}" for k, v in figures.items()]
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="quality metrics of the shipped checkpoints, beside baselines")
    p.add_argument("--json", help="also write the figures as JSON here")
    p.add_argument(
        "--only",
        help="comma list: edit_flow, forward_flow, reverse_flow, similarity, decomposition_policy, "
        "recognition",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", help="folder of checkpoints (default: the shipped ones)")
    p.set_defaults(func=main)


def main(args) -> int:
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    results = evaluate_all(only, args.seed, args.checkpoints)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
