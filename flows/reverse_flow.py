"""The reverse flow p(z | y, x, φ_context): what must a hole output so that the program outputs y?

A 1-D rational-quadratic spline flow per point (multimodal, so the branches of square, cos,
abs, ... are separate modes), conditioned on the point, the program context with a hole
token, and the principal-branch inverse of the hole's path (see :mod:`flows.reverse_data`).

``sample_hole`` draws values for the hole and, by default, polishes each draw with a few
Newton steps on the path itself (siblings are cached, so the path is a scalar function of the
hole's value per point): the flow chooses the branch, the simulator supplies the digits.
"""

from __future__ import annotations

import numpy as np
import torch

from flows.encoders import POINT_CHANNELS, collate_states, unslog
from flows.flow_module import PointFlow
from flows.reverse_data import (
    EXTRA_CHANNELS,
    ReverseBatch,
    collate_reverse,
    encode_hole_state,
    hole_features,
    make_reverse_example,
    sample_hole_task,
)
from simulator.enumerate import ProgramPrior
from simulator.execute import node_values
from simulator.inverse import exact_inverse, hole_path, path_forward
from simulator.program import Program

REL_TOL = 1e-3
REVERSE_TABLE_COLUMNS = ["program", "hole", "true_z", "raw_draw", "refined_draw"]


class ReverseFlow(PointFlow):
    """p(z | y, x, φ with a hole) per point, with ``sample_hole`` for the sub-goal stage."""

    metric_keys = ("hit_point", "hit_hole", "raw_hit_point", "exact_hit_point", "newton_prior_hit_point")
    table_key = "val/reverse_examples"
    table_columns = tuple(REVERSE_TABLE_COLUMNS)

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
        context_features: int = 48,
        flow_hidden: int = 48,
        num_transforms: int = 3,
        num_bins: int = 10,
        lr: float = 2e-3,
        metric_holes: int = 40,
        zoom: float = 1e-4,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.init_encoder()
        self.init_density(POINT_CHANNELS + EXTRA_CHANNELS + 2 * hidden)

    def context(self, batch: ReverseBatch) -> torch.Tensor:
        """(B, n, C): flow context per hole and point."""
        nodes, pooled = self.encoder(batch.states)
        B, n = batch.t.shape
        hole = nodes[torch.arange(B), batch.hole]
        shared = torch.cat([pooled, hole], -1).unsqueeze(1).expand(-1, n, -1)
        return self.context_net(torch.cat([batch.states.points, batch.extra, shared], -1))

    def to_flow(self, t: torch.Tensor) -> torch.Tensor:
        """The fixed bijection t -> asinh(t / zoom) in front of the learned flow.

        It magnifies the neighbourhood of t = 0 (where the principal inverse is exact) so that
        the flow can hit 1e-3 relative precision there without an infinitely sharp spike.
        """
        return torch.asinh(t / self.hparams.zoom)

    def from_flow(self, u: torch.Tensor) -> torch.Tensor:
        return self.hparams.zoom * torch.sinh(u.clamp(-60.0, 60.0))

    def log_prob(self, batch: ReverseBatch) -> torch.Tensor:
        """log p(t) of every real point (nats, in t's own units): shape (number of real points,)."""
        ctx = self.context(batch)
        t = batch.t[batch.mask]
        log_jac = -0.5 * torch.log(self.hparams.zoom**2 + t.square())  # log |d to_flow / dt|
        return self.density.log_prob(self.to_flow(t).unsqueeze(-1), ctx[batch.mask]) + log_jac

    # ----- training (the loop itself is PointFlow's) --------------------------------------------
    def flow_values(self, batch: ReverseBatch) -> torch.Tensor:
        return self.to_flow(batch.t[batch.mask])

    def batch_size(self, batch: ReverseBatch) -> int:
        return len(batch.hole)

    def held_out_metrics(self, table: list) -> dict | None:
        if self.hparams.metric_holes <= 0:
            return None
        return reverse_flow_metrics(self, n=self.hparams.metric_holes, seed=1, n_samples=32, table=table)

    # ----- sampling -------------------------------------------------------------------------
    def sample_hole(
        self,
        program: Program,
        hole_loc: int,
        X: np.ndarray,
        y: np.ndarray,
        n: int = 32,
        refine: bool = True,
        seed: int = 0,
    ) -> np.ndarray:
        """``n`` values for the hole at every point: shape (n, points).

        ``program`` is any program holding the context; its subtree at ``hole_loc`` is cut
        and ignored. ``y`` is the wanted output. With ``refine`` each draw is polished by
        Newton steps on the path (see :func:`newton_refine`); without, they are raw flow draws.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        z = node_values(program, X)
        extra, anchor = hole_features(program, hole_loc, X, y, z)
        state = encode_hole_state(program, hole_loc, X, y, z)
        batch = ReverseBatch(
            collate_states([state]),
            torch.tensor([hole_loc]),
            torch.from_numpy(extra)[None],
            torch.zeros(1, len(y)),
            torch.ones(1, len(y), dtype=torch.bool),
        )
        was_training = self.training
        self.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ctx = self.context(batch)[0]  # (points, C)
            t = self.from_flow(self.density.sample(n, ctx)[..., 0].double())  # (n, points)
        self.train(was_training)
        values = unslog(t + torch.from_numpy(anchor)).numpy()
        if refine:
            values = newton_refine(hole_path(program, hole_loc, X, z), values, y)
        return values


def newton_refine(steps: list, Z: np.ndarray, y: np.ndarray, iters: int = 30) -> np.ndarray:
    """Polish hole values so that the path outputs y: damped Newton, elementwise per point.

    A step is kept only where it lowers |f(z) − y| (halving it up to four times), so a draw
    never leaves its basin for a worse one; draws where f is not finite stay as they are.
    """
    with torch.inference_mode(False), torch.enable_grad():  # callable from validation loops too
        return _newton(steps, Z, y, iters)


def _newton(steps: list, Z: np.ndarray, y: np.ndarray, iters: int) -> np.ndarray:
    z = torch.as_tensor(Z, dtype=torch.float64).clone()
    target = torch.as_tensor(y, dtype=torch.float64).expand_as(z)
    if not steps:
        return target.clone().numpy()

    def residual(v: torch.Tensor) -> torch.Tensor:
        r = (path_forward(steps, v) - target).abs()
        return torch.where(torch.isfinite(r), r, torch.full_like(r, np.inf))

    r = residual(z)
    for _ in range(iters):
        zz = z.clone().requires_grad_(True)
        f = path_forward(steps, zz)
        (g,) = torch.autograd.grad(f.sum(), zz, allow_unused=True)
        if g is None:
            break
        with torch.no_grad():
            step = (f - target) / g
            step = torch.where(torch.isfinite(step), step, torch.zeros_like(step))
            improved = torch.zeros_like(z, dtype=torch.bool)
            for _half in range(5):
                cand = z - step
                rc = residual(cand)
                better = (rc < r) & ~improved
                z = torch.where(better, cand, z)
                r = torch.where(better, rc, r)
                improved |= better
                step = step / 2
            if not improved.any():
                break
    return z.numpy()


def hole_hits(samples: np.ndarray, truth: np.ndarray, rel_tol: float = REL_TOL) -> np.ndarray:
    """Per point: does some sample lie within ``rel_tol`` relative error of the true value?

    Relative to ``max(|z_i|, 1e-3·rms(z), 1e-9)``, so a true value that happens to cross 0 on
    one point does not demand infinite precision there. ``samples`` is (n, points).
    """
    scale = np.maximum(np.abs(truth), max(1e-3 * float(np.sqrt(np.mean(truth**2))), 1e-9))
    with np.errstate(all="ignore"):
        close = np.abs(samples - truth) <= rel_tol * scale
    return close.any(axis=0)


def joint_hit(samples: np.ndarray, truth: np.ndarray, rel_tol: float = REL_TOL) -> bool:
    """Does one single draw match the true value on every point at once?"""
    scale = np.maximum(np.abs(truth), max(1e-3 * float(np.sqrt(np.mean(truth**2))), 1e-9))
    with np.errstate(all="ignore"):
        return bool((np.abs(samples - truth) <= rel_tol * scale).all(axis=1).any())


def reverse_flow_metrics(
    model: ReverseFlow, n: int = 200, seed: int = 0, n_samples: int = 64, table: list | None = None
) -> dict:
    """Held-out quality of the reverse flow on ``n`` fresh random holes.

    - ``hit_point``: share of (hole, point) pairs where one of ``n_samples`` refined draws is
      within 1e-3 relative error of the true value; ``hit_hole``: share of holes where that
      holds on every point (any draw per point); ``hit_joint``: one draw right on every point.
      ``raw_*``: the same for unrefined flow draws.
    - Baselines on the same holes: ``exact_*``, the principal-branch exact inverse
      (``exact_coverage`` where it exists at all, ``exact_coverage_injective`` where the path is
      also one-to-one); ``newton_prior_*``, the same number of draws from a broad prior
      (slog z ~ N(0, 2²)) refined by the same Newton steps, which isolates what the flow adds.
    - ``nll``: held-out negative log-likelihood per point of t (nats).

    ``table``, if given, receives a few (program, hole, true z, raw draw, refined draw) rows.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 104729]))
    start_rng = np.random.default_rng(np.random.SeedSequence([seed, 15485863]))  # holes never depend on it
    prior = ProgramPrior(2, 15)
    acc: dict[str, list] = {
        k: []
        for k in (
            "hit",
            "raw",
            "exact",
            "prior",
            "hit_h",
            "raw_h",
            "exact_h",
            "prior_h",
            "joint",
            "prior_joint",
        )
    }
    cover, cover_inj, nll, npts, holes = 0, 0, 0.0, 0, 0
    while holes < n:
        drawn = sample_hole_task(rng, prior)
        if drawn is None:
            continue
        program, loc, X, y, z = drawn
        holes += 1
        truth = z[loc]
        steps = hole_path(program, loc, X, z)
        raw = model.sample_hole(program, loc, X, y, n_samples, refine=False, seed=seed + holes)
        refined = newton_refine(steps, raw, y)
        start = unslog(torch.from_numpy(start_rng.normal(0, 2, size=raw.shape))).numpy()
        prior_refined = newton_refine(steps, start, y)
        exact = exact_inverse(program, loc, X, y)
        cover += exact is not None
        cover_inj += exact_inverse(program, loc, X, y, principal=False) is not None
        exact_rows = exact[None] if exact is not None else np.full((1, len(y)), np.nan)
        for key, s in (("hit", refined), ("raw", raw), ("exact", exact_rows), ("prior", prior_refined)):
            h = hole_hits(s, truth)
            acc[key].append(h.mean())
            acc[key + "_h"].append(h.all())
        acc["joint"].append(joint_hit(refined, truth))
        if table is not None and len(table) < 12:
            sub = str(program.subtree(loc))
            table.extend(
                [str(program), sub, float(truth[i]), float(raw[0, i]), float(refined[0, i])] for i in range(2)
            )
        acc["prior_joint"].append(joint_hit(prior_refined, truth))
        with torch.no_grad():
            lp = model.log_prob(collate_reverse([make_reverse_example(program, loc, X, y, z)]))
        nll -= float(lp.sum())
        npts += lp.numel()
    mean = lambda k: float(np.mean(acc[k]))  # noqa: E731
    return {
        "hit_point": mean("hit"),
        "hit_hole": mean("hit_h"),
        "hit_joint": mean("joint"),
        "raw_hit_point": mean("raw"),
        "raw_hit_hole": mean("raw_h"),
        "exact_hit_point": mean("exact"),
        "exact_hit_hole": mean("exact_h"),
        "exact_coverage": cover / n,
        "exact_coverage_injective": cover_inj / n,
        "newton_prior_hit_point": mean("prior"),
        "newton_prior_hit_hole": mean("prior_h"),
        "newton_prior_hit_joint": mean("prior_joint"),
        "nll": nll / max(npts, 1),
        "n_holes": n,
        "n_samples": n_samples,
    }
