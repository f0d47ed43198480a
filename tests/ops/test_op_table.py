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


def function_subclasses():
    """The names of the classes in tinygrad_wave's source that derive from Function, directly
    or through another op (Mean from Sum)."""
    classes = []  # (name, the names of its bases); nn's modules share some names with the ops
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes.append((node.name, {base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
                                            for base in node.bases}))
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


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_case_creates_its_function(case):
    rng = np.random.default_rng(0)
    inputs = [tinygrad_wave.tensor(a, requires_grad=True) for a in case.inputs(rng)]
    out = case.run(tinygrad_wave, *inputs)
    created = {type(node).__name__ for node in topological_order(out.grad_fn)}
    assert case.function in created, f"the case creates {sorted(created)}"
