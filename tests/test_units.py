"""Physical units: the dimension algebra, the search's choice among consistent programs only,
the units of each constant, and every way a user gives units."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pipelines.interface.estimator import ProgramRegressor
from pipelines.interface.pipeline import InductionPipeline, PipelineError
from pipelines.search.budget import Budget
from pipelines.search.finish import finish
from pipelines.search.planner import Planner
from pipelines.search.problem import Problem
from pipelines.search.types import Candidate
from simulator.execute import evaluate_many
from simulator.language import FunctionSet, is_literal
from simulator.program import Program, parse
from simulator.suites import TaskError, load_tasks
from simulator.units import Units, UnitsError, dimension, format_dimension

GAS = Units.parse("n=mol,T=K,V=m^3,P=Pa", ["n", "T", "V"], "P")
ARRHENIUS = Units.parse({"E": "J/mol", "T": "K", "k": "1/s"}, ["E", "T"], "k")


def _units_of(text: str, units: Units = GAS) -> list[str] | None:
    found = units.check(parse(text))
    return None if found is None else found.describe()


def test_unit_strings_are_read_by_pint_and_written_short():
    assert dimension("J/(mol*K)") == (2.0, 1.0, -2.0, 0.0, -1.0, -1.0, 0.0)
    assert dimension("1") == dimension("dimensionless") == (0.0,) * 7
    assert format_dimension(dimension("J/(mol*K)")) == "J/(K*mol)"
    assert format_dimension(dimension("m/s^2")) == "m/s^2"
    assert format_dimension(dimension("m^0.5")) == "m^(1/2)"
    with pytest.raises(UnitsError, match="not a unit pint can read"):
        dimension("furlongz")


def test_a_constant_carries_the_units_the_law_needs():
    assert _units_of("8.3*x1*x2/x3") == ["J/(K*mol)"]  # the gas constant
    assert _units_of("2.0 + 8.3*x1*x2/x3") == ["Pa", "J/(K*mol)"]
    assert _units_of("3.0*exp(-2.0*x1/x2)", ARRHENIUS) == ["1/s", "K*mol/J"]
    assert _units_of("2.0*3.0*x1*x2/x3") == ["free", "free"]  # only their product is fixed


def test_inconsistent_programs_have_no_units():
    assert _units_of("x1*x2/x3") is None  # mol*K/m^3 is no pressure, and no constant scales it
    assert _units_of("2.0*x1 + x2") is None  # a sum of K with mol*(K/mol) and then Pa
    assert _units_of("3.0*exp(x1/x2)", ARRHENIUS) is None  # exp of J/(mol*K)
    assert _units_of("2.0*x1**x2") is None  # mol to a power that varies
    assert _units_of("2.0*x2**(1/2)") == ["Pa/K^(1/2)"]  # a number, worked out, as exponent


@pytest.mark.parametrize(
    "spec, match",
    [
        ("n=mol,T=K,V=m^3", "no units for P"),
        ("n=mol,T=K,V=m^3,P=Pa,Q=s", "'Q' is not a column"),
        ("n=mol,T,V=m^3,P=Pa", "is not name=unit"),
        ("n=mol,T=K,V=m^3,P=Pascalz", "P: units 'Pascalz'"),
    ],
)
def test_bad_units_are_one_line_errors_that_name_the_problem(spec, match):
    with pytest.raises(UnitsError, match=match):
        Units.parse(spec, ["n", "T", "V"], "P")


def _literals_as_constants(program: Program) -> Program:
    """A truth's digits (the 2 of cos(2*t), a rate in 1/s) as constants, as the search writes them."""
    tokens, consts, i = [], [], 0
    for t in program.tokens:
        if is_literal(t):
            tokens.append("const")
            consts.append(float(t))
        else:
            tokens.append(t)
            if t == "const":
                consts.append(program.consts[i])
                i += 1
    return Program(tuple(tokens), tuple(consts))


@pytest.mark.parametrize("path", ["benchmarks/physics/laws.yaml", "benchmarks/suites/laws.yaml"])
def test_every_law_of_the_suites_is_consistent_with_its_units(path):
    tasks = load_tasks(path)
    for task in tasks:
        assert task.units is not None, task.name
        assert task.dimensions().check(_literals_as_constants(task.program())) is not None, task.name


def test_a_task_file_with_bad_units_is_refused(tmp_path):
    file = tmp_path / "tasks.yaml"
    file.write_text(
        "tasks:\n  - name: Fall\n    expression: '9.81*x1**2/2'\n"
        "    units: {x1: s, target: meter_z}\n    function_set: [add, mul, const]\n"
        "    train: {low: 0, high: 1, points: 10}\n"
    )
    with pytest.raises(TaskError, match="meter_z"):
        load_tasks(file)


def _candidate(text: str, X, y) -> Candidate:
    program = parse(text)
    Y, _ = evaluate_many([program], X)
    return Candidate(program, float(np.mean((Y[0] - y) ** 2) / np.var(y)), (), "start", "a test")


def _gas_data(noise: float = 0.0, n: int = 60):
    rng = np.random.default_rng(0)
    X = np.c_[rng.uniform(0.5, 3, n), rng.uniform(250, 400, n), rng.uniform(0.01, 0.05, n)]
    y = 8.314 * X[:, 0] * X[:, 1] / X[:, 2]
    return X, y * (1 + noise * rng.standard_normal(n))


def test_the_search_goes_through_inconsistent_programs_but_never_chooses_one():
    X, y = _gas_data()
    problem = Problem(X, y, FunctionSet.from_names("add,sub,mul,div,exp,const", 3), units=GAS)
    state = Planner().solve_state(problem, Budget(5_000, 10.0))
    wrong = state.admit(_candidate("x1*x2/x3", X, y), None, 0)  # the right shape, no constant
    assert wrong is not None and state.frontier, "an inconsistent program is still searched from"
    assert state.best is None and not state.front and state.unchecked
    state.admit(_candidate("3.0*x1*x2/x3 + 100.0", X, y), None, 1)
    assert str(state.best.program) == "3.0*x1*x2/x3 + 100.0"
    result = finish(state, "auto", "calls", None, snap=False)
    assert all(GAS.check(r.program) is not None for r in result.front)
    assert result.constant_units[0] == "J/(K*mol)"  # the sum may be simplified away


def test_with_nothing_consistent_the_result_ignores_the_units_and_says_so():
    X, y = _gas_data()
    problem = Problem(X, y, FunctionSet.from_names("add,sub,mul,div,const", 3), units=GAS)
    state = Planner().solve_state(problem, Budget(5_000, 10.0))
    state.admit(_candidate("x1*x2/x3", X, y), None, 0)
    result = finish(state, "auto", "calls", None, snap=False)
    assert result.units is None and result.constant_units is None
    assert any("no program consistent with the given units" in w for w in result.warnings)


def test_a_noisy_gas_law_keeps_its_constant_with_units_and_reports_them():
    """The ideal gas law with 1% noise: with units, R stays the fitted value (a number in
    given units is no simple number of the law) and is reported in J/(mol*K)."""
    X, y = _gas_data(0.01)
    pipe = InductionPipeline.preset("full")
    fs = "add,sub,mul,div,sin,cos,exp,log,sqrt,const"
    result = pipe.solve(
        X, y, fs, calls=20_000, seconds=60, names=["n", "T", "V"], units="n=mol,T=K,V=m^3,P=Pa", target="P"
    )
    assert result.program.complexity == 7 and abs(result.program.consts[0] - 8.314) < 0.1
    assert result.constant_units == ["J/(K*mol)"]
    assert "8.306 [J/(K*mol)]" in str(result) or "[J/(K*mol)]" in str(result)
    assert result.to_dict()["units"]["constants"] == ["J/(K*mol)"]
    with pytest.raises(PipelineError, match="no units for P"):
        pipe.solve(X, y, fs, calls=100, names=["n", "T", "V"], units="n=mol,T=K,V=m^3", target="P")


def test_the_estimator_takes_units_named_by_the_target_series():
    pd = pytest.importorskip("pandas")
    X, y = _gas_data()
    frame = pd.DataFrame(X, columns=["n", "T", "V"])
    model = ProgramRegressor(
        "add,sub,mul,div,exp,log,const", calls=5_000, units={"n": "mol", "T": "K", "V": "m^3", "P": "Pa"}
    )
    model.fit(frame, pd.Series(y, name="P"))
    assert model.result_.constant_units == ["J/(K*mol)"]
    assert "8.314" in str(model.program_)


def test_the_cli_reads_units_and_prints_the_constants_units(tmp_path):
    X, y = _gas_data()
    csv = tmp_path / "gas.csv"
    np.savetxt(csv, np.c_[X, y], delimiter=",", header="n,T,V,P", comments="")
    out = tmp_path / "r.json"
    base = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "solve",
        "--csv",
        str(csv),
        "--target",
        "P",
        "--calls",
        "5000",
    ]
    proc = subprocess.run(
        [*base, "--units", "n=mol,T=K,V=m^3,P=Pa", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[J/(K*mol)]" in proc.stdout
    assert json.loads(out.read_text())["units"]["given"]["P"] == "Pa"
    bad = subprocess.run(
        [*base, "--units", "n=mol,T=K,V=m^3,P=Pascalz"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: P: units 'Pascalz'")
