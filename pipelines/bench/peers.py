"""Peer symbolic-regression systems run beside the pipeline: Operon and gplearn.

Each peer gets the task's function set and the same budget of simulator calls and seconds,
and its found expression comes back as sympy, so that one recovery check judges every
method alike. The settings, and why they give each peer a fair chance at exact recovery,
are in ``benchmarks/PEERS.md``.

This file holds only what is particular to a peer: its names for our operators, its
protected semantics, its settings and how to read its models back. What an operator means
(its sympy form, its numpy function) comes from :mod:`simulator.operators`. Running a
peer in a separate process with a hard time limit is the bench runner's job
(:mod:`pipelines.bench.runner`), not this file's.
"""

from __future__ import annotations

import importlib
import math
import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from simulator.language import FunctionSet
from simulator.operators import OPERATORS
from simulator.scoring import nmse

PEERS: tuple[str, ...] = ("operon", "gplearn")
INSTALL_HINT = 'pip install -e ".[peers]"'
MODULES = {"operon": "pyoperon", "gplearn": "gplearn"}
_IMPORTS = {"operon": ("pyoperon.sklearn",), "gplearn": ("gplearn.genetic", "gplearn.functions")}

GPLEARN_POPULATION = 1000
OPERON_POPULATION = 1000
OPERON_CHUNK = 10  # generations per warm-started Operon fit
EXACT_NMSE = 1e-12  # a peer stops once its training NMSE is this low (the planner's tolerance)


def why_not(name: str) -> str | None:
    """Why a peer cannot run here (its package is missing or does not import), or None."""
    if name not in PEERS:
        return f"unknown peer {name!r}; peers: {', '.join(PEERS)}"
    try:
        load(name)
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError) and (err.name or "").split(".")[0] == MODULES[name]:
            return f"peer {name!r} needs the {MODULES[name]} package: {INSTALL_HINT}"
        return f"peer {name!r}: {MODULES[name]} does not import ({err}); reinstall with {INSTALL_HINT}"
    except Exception as err:  # noqa: BLE001 - a broken native extension can raise anything
        return f"peer {name!r}: {MODULES[name]} does not import ({type(err).__name__}: {err})"
    return None


def load(name: str) -> None:
    """Import a peer's modules in this process (raises ImportError when they are missing)."""
    for module in _IMPORTS[name]:
        importlib.import_module(module)


def run_peer(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    function_set: FunctionSet | str | list,
    calls: int,
    seconds: float,
    seed: int,
    *,
    X_test: np.ndarray | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one peer on (X, y) within ``calls`` simulator calls and ``seconds`` of wall time.

    Returns ``found_sympy`` (the expression) and ``found_sympy_str``, ``nmse_train``,
    ``simulator_calls``, ``seconds``, ``complexity``, ``fit_forward_passes``, ``history``
    [(calls, best NMSE)], ``config`` and, when ``X_test`` is given, ``y_test_pred``.
    ``options`` override the peer's documented settings. Runs in this process: the peer's own
    clock stops it; a hard limit is the caller's to impose.
    """
    problem = why_not(name)
    if problem:
        raise ImportError(problem) if name in PEERS else ValueError(problem)
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y, dtype=np.float64).ravel()
    fs = function_set if isinstance(function_set, FunctionSet) else FunctionSet.from_names(function_set)
    if fs.n_vars != X.shape[1]:
        fs = fs.with_vars(X.shape[1])
    fit = _fit_operon if name == "operon" else _fit_gplearn
    out = fit(X, y, fs, int(calls), float(seconds), int(seed), X_test, dict(options or {}))
    out["nmse_train"] = train_nmse(y, out.pop("y_train_pred"))
    return out


def train_nmse(y: np.ndarray, pred: np.ndarray) -> float | None:
    """The project's NMSE (:func:`simulator.scoring.nmse`) of one prediction; None when not finite."""
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if pred.shape != y.shape:
        return None
    value = float(nmse(pred, y)[0])
    return value if math.isfinite(value) else None


def _list(a: np.ndarray | None) -> list[float | None] | None:
    if a is None:
        return None
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, dtype=np.float64).ravel()]


# --- Operon ---------------------------------------------------------------------------------------

# Operon's symbols for each of our operators. An operator Operon lacks maps to the ones that
# build it, so the peer can still reach every program the task allows.
_OPERON_SYMBOLS: dict[str, tuple[str, ...]] = {
    "add": ("add",),
    "sub": ("sub",),
    "mul": ("mul",),
    "div": ("div",),
    "pow": ("pow",),
    "sin": ("sin",),
    "cos": ("cos",),
    "tan": ("tan",),
    "exp": ("exp",),
    "log": ("log",),
    "sqrt": ("sqrt",),
    "abs": ("abs",),
    "tanh": ("tanh",),
    "square": ("square",),
    "neg": ("sub",),
    "inv": ("div",),
    "cube": ("mul",),
}

# Operon's unary node types that mean exactly one of our operators (by NodeType name).
_OPERON_SAME = {
    "Sin": "sin",
    "Cos": "cos",
    "Tan": "tan",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Abs": "abs",
    "Tanh": "tanh",
    "Square": "square",
}

# Operon's own unary node types, with no operator of ours behind them.
_OPERON_OWN: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "Logabs": lambda a: sp.log(sp.Abs(a)),
    "Sqrtabs": lambda a: sp.sqrt(sp.Abs(a)),
    "Cbrt": sp.cbrt,
}


def operon_config(
    fs: FunctionSet, calls: int, seconds: float, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The documented Operon settings for a function set and budget (see benchmarks/PEERS.md)."""
    options = dict(options or {})
    unknown = [t for t in fs.unary + fs.binary if t not in _OPERON_SYMBOLS]
    if unknown:
        raise ValueError(f"operon: no mapping for operator(s) {unknown}")
    symbols = dict.fromkeys(s for t in fs.binary + fs.unary for s in _OPERON_SYMBOLS[t])
    exact = bool(options.get("symbolic_mode", not fs.has_const))
    if fs.has_const:
        symbols["constant"] = None
    symbols["variable"] = None
    population = min(OPERON_POPULATION, max(1, calls // 2))
    iterations = 0 if exact else int(options.get("optimizer_iterations", 10))
    config = {
        "allowed_symbols": ",".join(symbols),
        "symbolic_mode": exact,  # no fitted constants: integer coefficients, no local search
        "optimizer": "lm",
        "optimizer_iterations": iterations,
        "objectives": ["r2"],
        "population_size": population,
        "pool_size": population,
        # One call a candidate, its constant fit included: the generations carry the budget;
        # Operon's own evaluation counter also counts every optimizer step, so it only backs up.
        "generations": max(1, calls // population - 1),
        "max_evaluations": calls * (3 * iterations + 2),
        "max_time": max(1, int(seconds)),
        "max_length": 30,
        "max_depth": 10,
        "epsilon": 1e-12,
        "n_threads": 1,
    }
    return {**config, **options}


def _fit_operon(X, y, fs, calls, seconds, seed, X_test, options) -> dict[str, Any]:
    """Operon in warm-started chunks of generations: a best-so-far history, and a stop once exact.

    Operon's own ``epsilon`` does not end a run at an exact fit, so without chunks every run
    would spend its whole budget and its calls to recovery would be overstated.
    """
    from pyoperon.sklearn import SymbolicRegressor

    config = operon_config(fs, calls, seconds, options)
    total, pool, chunk = int(config["generations"]), int(config["pool_size"]), OPERON_CHUNK
    model = SymbolicRegressor(
        **{**config, "generations": min(chunk, total)},
        warm_start=True,
        random_state=np.random.default_rng(seed),  # a Generator: each chunk draws the next seed
    )
    start = time.perf_counter()
    history: list[tuple[int, float | None]] = []
    used = passes = done = 0
    while done < total:
        remaining = seconds - (time.perf_counter() - start)
        if done and remaining < 0.5:
            break
        g = min(chunk, total - done)
        per_call = 3 * int(config["optimizer_iterations"]) + 1  # Operon's counter: fit steps included
        model.set_params(
            generations=g, max_time=max(1, int(remaining)), max_evaluations=(calls - used) * per_call
        )
        model.fit(X, y)
        stats = model.stats_
        first = config["population_size"] if not done else 0
        n = int(stats["evaluation_count"]) or first + int(stats["generations"]) * pool
        used += n
        passes += int(stats["residual_evaluations"]) + int(stats["jacobian_evaluations"]) - n
        done += g
        if used >= calls:
            break
        loss = train_nmse(y, model.predict(X))
        history.append((used, loss))
        if loss is not None and loss <= EXACT_NMSE:
            break
    elapsed = time.perf_counter() - start
    columns = {h: i for i, h in enumerate(model.variables_)}
    expr = operon_to_sympy(model.model_.Nodes, columns)
    return {
        "found_sympy_str": str(expr),
        "found_sympy": expr,
        "y_train_pred": model.predict(X),
        "simulator_calls": used,
        "fit_forward_passes": 0 if config["symbolic_mode"] else max(0, passes),
        "seconds": elapsed,
        "complexity": int(model.stats_["model_length"]),
        "history": history,
        "y_test_pred": _list(model.predict(X_test)) if X_test is not None else None,
        "config": {**config, "generations_per_chunk": chunk},
    }


def _operon_number(value: float) -> sp.Expr:
    """Integer coefficients (symbolic mode) stay exact integers; others become sympy floats."""
    v = float(value)
    return sp.Integer(int(v)) if v.is_integer() and abs(v) < 2**31 else sp.Float(v)


def operon_to_sympy(nodes, columns: dict[int, int]) -> sp.Expr:
    """A sympy expression from an Operon tree's postfix nodes; a node's first child is pushed last.

    ``columns`` maps a variable hash to its column; a variable node is its weight times x<k>.
    """
    import pyoperon as op

    T = op.NodeType
    unary: dict[Any, Callable[[sp.Expr], sp.Expr]] = {
        getattr(T, kind): OPERATORS[ours].sympy for kind, ours in _OPERON_SAME.items()
    }
    unary.update({getattr(T, kind): f for kind, f in _OPERON_OWN.items()})
    xs = sp.symbols(f"x1:{max(columns.values(), default=0) + 2}", real=True)
    stack: list[sp.Expr] = []
    for node in nodes:
        kids = [stack.pop() for _ in range(node.Arity)]  # first popped is the first child
        t = node.Type
        if node.IsVariable:
            stack.append(_operon_number(node.Value) * xs[columns[node.HashValue]])
        elif node.IsConstant:
            stack.append(_operon_number(node.Value))
        elif t == T.Add:  # Operon's arithmetic nodes are n-ary
            stack.append(sp.Add(*kids))
        elif t == T.Mul:
            stack.append(sp.Mul(*kids))
        elif t == T.Sub:
            stack.append(-kids[0] if len(kids) == 1 else kids[0] - sp.Add(*kids[1:]))
        elif t == T.Div:
            stack.append(1 / kids[0] if len(kids) == 1 else kids[0] / sp.Mul(*kids[1:]))
        elif t == T.Pow:
            stack.append(OPERATORS["pow"].sympy(kids[0], kids[1]))
        elif t == T.Aq:  # analytic quotient
            stack.append(kids[0] / sp.sqrt(1 + kids[1] ** 2))
        elif t in unary and len(kids) == 1:
            stack.append(unary[t](kids[0]))
        else:
            raise ValueError(f"operon: cannot convert node {t} to sympy")
    if len(stack) != 1:
        raise ValueError("operon: malformed tree")
    return stack[0]


# --- gplearn --------------------------------------------------------------------------------------

# gplearn's built-in function names (the ones we can pass by name).
_GPLEARN_BUILTIN = frozenset(
    {"add", "sub", "mul", "div", "sqrt", "log", "abs", "neg", "inv", "max", "min", "sin", "cos", "tan"}
)

# Where gplearn's meaning differs from ours: its protected operators, as the functions they
# compute away from their guard bands, and its operators that we lack. Every other name means
# what our operator of that name means (its sympy form comes from the registry).
_GPLEARN_OWN_SYMPY: dict[str, Callable[..., sp.Expr]] = {
    "log": lambda a: sp.log(sp.Abs(a)),
    "sqrt": lambda a: sp.sqrt(sp.Abs(a)),
    "pow": lambda a, b: sp.Abs(a) ** b,  # our stand-in below: |a| ** b
    "max": sp.Max,
    "min": sp.Min,
}


def _gplearn_sympy(name: str) -> Callable[..., sp.Expr] | None:
    own = _GPLEARN_OWN_SYMPY.get(name)
    if own is not None:
        return own
    op = OPERATORS.get(name)
    return op.sympy if op is not None else None


def _gplearn_extra() -> dict[str, Any]:
    """Protected versions of the operators gplearn lacks: finite everywhere, as gplearn requires."""
    from gplearn.functions import make_function

    def _exp(a):
        return np.exp(np.minimum(a, 100.0))

    def _square(a):
        return np.square(np.clip(a, -1e100, 1e100))

    def _cube(a):
        return np.clip(a, -1e60, 1e60) ** 3

    def _pow(a, b):
        with np.errstate(all="ignore"):
            out = np.power(np.abs(a), np.clip(b, -100.0, 100.0))
        return np.where(np.isfinite(out), out, 0.0)

    return {
        "exp": make_function(function=_exp, name="exp", arity=1),
        "square": make_function(function=_square, name="square", arity=1),
        "cube": make_function(function=_cube, name="cube", arity=1),
        "tanh": make_function(function=OPERATORS["tanh"].numpy, name="tanh", arity=1),
        "pow": make_function(function=_pow, name="pow", arity=2),
    }


def gplearn_config(
    fs: FunctionSet, calls: int, seconds: float, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The documented gplearn settings for a function set and budget (see benchmarks/PEERS.md)."""
    options = dict(options or {})
    population = int(options.get("population_size", min(GPLEARN_POPULATION, max(1, calls))))
    config = {
        "function_set": [t for t in fs.binary + fs.unary],
        "population_size": population,
        "generations": max(1, calls // population),  # population x generations = the call budget
        "const_range": (-5.0, 5.0) if fs.has_const else None,
        "init_depth": (2, 6),
        "tournament_size": 20,
        "parsimony_coefficient": 0.001,
        "metric": "mse",
        "p_crossover": 0.9,
        "p_subtree_mutation": 0.01,
        "p_hoist_mutation": 0.01,
        "p_point_mutation": 0.01,
        "n_jobs": 1,
    }
    return {**config, **options}


def _fit_gplearn(X, y, fs, calls, seconds, seed, X_test, options) -> dict[str, Any]:
    from gplearn.genetic import SymbolicRegressor

    config = gplearn_config(fs, calls, seconds, options)
    extra = _gplearn_extra()
    missing = [t for t in config["function_set"] if t not in extra and t not in _GPLEARN_BUILTIN]
    if missing:
        raise ValueError(f"gplearn: no function for operator(s) {missing}")
    functions = tuple(extra.get(t, t) for t in config["function_set"])
    generations = int(config.pop("generations"))
    population = int(config["population_size"])
    var = float(np.var(y)) or 1.0
    feature_names = [f"x{i + 1}" for i in range(X.shape[1])]
    # A RandomState object (not an int) keeps one random stream across the warm-started fits.
    model = SymbolicRegressor(
        **{**config, "function_set": functions},
        generations=1,
        warm_start=True,
        stopping_criteria=EXACT_NMSE * var,
        feature_names=feature_names,
        random_state=np.random.RandomState(seed),
        verbose=0,
    )
    start = time.perf_counter()
    history: list[tuple[int, float]] = []
    done, last = 0, 0.0
    with np.errstate(all="ignore"):
        while done < generations:  # one generation a fit, so the clock is read between generations
            elapsed = time.perf_counter() - start
            if done and elapsed + last > seconds:
                break
            t0 = time.perf_counter()
            model.set_params(generations=done + 1)
            model.fit(X, y)
            last = time.perf_counter() - t0
            done += 1
            best = float(model.run_details_["best_fitness"][-1])
            history.append((done * population, best / var))
            if best <= EXACT_NMSE * var:
                break
        elapsed = time.perf_counter() - start
        pred = model.predict(X)
        test = model.predict(X_test) if X_test is not None else None
    program = model._program
    expr = gplearn_to_sympy(str(program), X.shape[1])
    return {
        "found_sympy_str": str(expr),
        "found_sympy": expr,
        "y_train_pred": pred,
        "simulator_calls": done * population,
        "fit_forward_passes": 0,
        "seconds": elapsed,
        "complexity": int(program.length_),
        "history": history,
        "y_test_pred": _list(test),
        "config": {**config, "generations": generations, "stopping_criteria": EXACT_NMSE * var},
    }


_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<sym>[(),]))")


def gplearn_to_sympy(text: str, n_vars: int) -> sp.Expr:
    """A sympy expression from a gplearn program string such as ``add(mul(x1, x1), 0.5)``."""
    xs = {f"x{i + 1}": sp.Symbol(f"x{i + 1}", real=True) for i in range(n_vars)}
    xs.update({f"X{i}": xs[f"x{i + 1}"] for i in range(n_vars)})  # gplearn's default names
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"gplearn: cannot read program {text!r} at {pos}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    tokens.append(("end", ""))  # reading past the end meets this and fails with a clear message
    i = 0

    def expr() -> sp.Expr:
        nonlocal i
        kind, value = tokens[i]
        if kind == "end":
            raise ValueError(f"gplearn: program {text!r} ends too early")
        i += 1
        if kind == "num":
            return sp.Float(value) if any(c in value for c in ".eE") else sp.Integer(value)
        if kind == "name" and tokens[i][1] != "(":
            if value not in xs:
                raise ValueError(f"gplearn: unknown variable {value!r}")
            return xs[value]
        build = _gplearn_sympy(value) if kind == "name" else None
        if build is None:
            raise ValueError(f"gplearn: unknown function {value!r}")
        i += 1  # "("
        args = [expr()]
        while tokens[i][1] == ",":
            i += 1
            args.append(expr())
        if tokens[i][1] != ")":
            raise ValueError(f"gplearn: expected ')' in {text!r}")
        i += 1
        return build(*args)

    out = expr()
    if i != len(tokens) - 1:
        raise ValueError(f"gplearn: trailing text in {text!r}")
    return out
