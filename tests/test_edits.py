import numpy as np
import pytest
from hypothesis import given, settings

from simulator.edits import Edit, apply, corrupt, edit_distance, edit_path, legal_edits, next_edits
from simulator.language import FunctionSet
from simulator.program import Program, parse
from tests.strategies import FULL, programs


@given(programs())
@settings(max_examples=100, deadline=None)
def test_every_legal_edit_yields_a_valid_program(p):
    for e in legal_edits(p, FULL):
        q = apply(p, e)
        assert isinstance(q, Program) and q != p or q.key != p.key or e.kind == "replace"
        assert len(q.consts) == sum(t == "const" for t in q.tokens)


@given(programs(), programs())
@settings(max_examples=150, deadline=None)
def test_edit_path_reaches_target(a, b):
    q = a
    for e in edit_path(a, b):
        assert e in set(legal_edits(q, FULL)) or e.kind == "replace"
        q = apply(q, e)
    assert q.tokens == b.tokens
    assert len(edit_path(a, b)) == edit_distance(a, b)


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("x2 + (x1*x3 + x1)/cos(x3)", "(x1*x3 + x1)/cos(x3)", 1),  # one hoist, not a rebuild
        ("x1*(x1 + sin(x1))", "x1*(x1 + sin(x1)) + x2", 1),  # one wrap
        ("sin(x1 + x2)", "cos(x1 + x2)", 1),
        ("x1", "exp(x1*x1) + x1", 3),  # a leaf grows by one wrap per operator node
        ("x1 + x2", "x2 + x1", 2),  # no swap edit: two replacements
        ("sin(x1)*exp(x2)", "x3", 1),  # collapse
        ("x1 + x1", "x1 + x1", 0),
    ],
)
def test_edit_distance_is_the_fewest_edits_on_hand_cases(a, b, d):
    assert edit_distance(parse(a), parse(b)) == d
    q = parse(a)
    for e in edit_path(parse(a), parse(b)):
        q = apply(q, e)
    assert q.tokens == parse(b).tokens


@given(programs(max_size=10))
@settings(max_examples=40, deadline=None)
def test_inverse_of_corruption_gets_back(p):
    rng = np.random.default_rng(0)
    bad, made = corrupt(p, FULL, 3, rng)
    path = edit_path(bad, p)
    assert len(path) <= len(bad) + len(p)
    q = bad
    for e in path:
        q = apply(q, e)
    assert q.tokens == p.tokens


def test_edits_are_plain_data():
    e = Edit("wrap_binary", 2, "add", "x1", 1)
    assert Edit.from_dict(e.to_dict()) == e and hash(e) == hash(Edit(**e.to_dict()))
    assert str(e) == "wrap_binary@2(add, x1, right)"


def test_next_edits_lists_every_correct_step():
    fs = FunctionSet.from_names("Koza", 1)
    a, b = parse("sin(x1)"), parse("cos(x1)")
    assert next_edits(a, b, fs) == [Edit("replace", 0, "cos")]
    both = next_edits(parse("x1"), parse("x1 + x1"), fs)
    assert Edit("wrap_binary", 0, "add", "x1", 0) in both and Edit("wrap_binary", 0, "add", "x1", 1) in both


@given(programs(), programs())
@settings(max_examples=8, deadline=None)
def test_next_edits_with_a_shared_memo_match_one_alignment_per_child(a, b):
    """next_edits reuses subtree alignments across children; the answer must not change."""
    d = edit_distance(a, b)
    want = [] if d == 0 else [e for e in legal_edits(a, FULL) if edit_distance(apply(a, e), b) < d]
    assert next_edits(a, b, FULL) == want


def test_legal_edit_kinds_cover_the_language():
    fs = FunctionSet.from_names("Koza", 1)
    kinds = {e.kind for e in legal_edits(parse("sin(x1) + x1"), fs)}
    assert kinds == {"replace", "wrap_unary", "wrap_binary", "hoist", "collapse"}
