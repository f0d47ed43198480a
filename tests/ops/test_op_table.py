"""The op table (tests/support/op_table.py) is complete and says what it runs: every Function
subclass in tinygrad_wave has a case there (or is in its short TESTED_ELSEWHERE list), and every
case really creates the Function it names, so the torch comparison, the gradcheck and the
retain-graph tests that read the table reach each backward."""
import ast
from pathlib import Path

import numpy as np
import pytest

import tinygrad_wave
from op_table import CASES, TESTED_ELSEWHERE
from tinygrad_wave.autograd import topological_order

PACKAGE = Path(tinygrad_wave.__file__).parent


def class_definitions():
    """(class definition, the names of its bases) for every class in tinygrad_wave's source."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                yield node, {base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
                             for base in node.bases}


def function_subclasses():
    """The names of the classes in tinygrad_wave's source that derive from Function, directly
    or through another op (Mean from Sum)."""
    classes = [(node.name, bases) for node, bases in class_definitions()]  # nn's modules share some names with the ops
    functions = {"Function"}
    while True:
        derived = {name for name, bases in classes if bases & functions}
        if derived <= functions:
            return functions - {"Function"}
        functions |= derived


def test_every_function_is_in_the_table():
    functions = function_subclasses()
    assert len(functions) > 30  # the search found the ops at all
    in_table = {case.function for case in CASES.values()}
    missing = functions - in_table - set(TESTED_ELSEWHERE)
    assert not missing, f"Functions with no case in tests/support/op_table.py: {sorted(missing)}"
    unknown = (in_table | set(TESTED_ELSEWHERE)) - functions
    assert not unknown, f"the table names classes that are no Function of tinygrad_wave: {sorted(unknown)}"
    assert not in_table & set(TESTED_ELSEWHERE), "a Function is both in the table and 'tested elsewhere'"


def test_every_backward_carries_its_derivation():
    """The project's promise: each op's backward is derived by hand and the derivation is
    written beside it, as formulas in its docstring. (The jit's two nodes derive nothing:
    one runs the recorded ops' own backwards, the other only refuses; each says so.)"""
    functions = function_subclasses() | {"Function"}
    docstrings = {node.name: ast.get_docstring(method) or ""  # each op's own backward
                  for node, bases in class_definitions() if bases & functions
                  for method in node.body if isinstance(method, ast.FunctionDef) and method.name == "backward"}
    assert set(docstrings) == function_subclasses(), "a Function without a backward of its own"
    assert [name for name, doc in docstrings.items() if not doc] == []
    jit_nodes = {"ReplayedForward", "ReplayedOutput"}
    assert [name for name, doc in docstrings.items() if "=" not in doc and name not in jit_nodes] == []


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_case_creates_its_function(case):
    rng = np.random.default_rng(0)
    inputs = [tinygrad_wave.tensor(a, requires_grad=True) for a in case.inputs(rng)]
    out = case.run(tinygrad_wave, *inputs)
    created = {type(node).__name__ for node in topological_order(out.grad_fn)}
    assert case.function in created, f"the case creates {sorted(created)}"
