"""The lessons run with their answers, print what their pages show, and quote their own numbers.

tests/lessons.py says how a lesson is run and compared, and how to save fresh outputs.
"""
import re

import nbformat
import pytest

import lessons

LESSONS = lessons.lessons()
QUOTED = re.compile(r"(?<![\w.])\d+\.\d{3,}(?:e[-+]?\d+)?")  # 3.4323, 0.968, 1.2e-02: read off an output
FENCED = re.compile(r"```.*?```", re.S)


def ids(paths):
    return [p.stem for p in paths]


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=ids(LESSONS))
def test_a_fresh_run_with_the_answers_prints_the_saved_outputs(path):
    saved = lessons.read(path)
    fresh = lessons.execute(lessons.answered(saved), path)
    found = lessons.differences(saved, fresh)
    assert not found, (f"{path.name} prints something else than its saved outputs; if the change is "
                       "meant, save them again with `python tests/lessons.py " + f"docs/lessons/{path.name}`:\n"
                       + "\n".join(found))


def test_there_are_seven_lessons_and_1_2_4_6_and_7_have_exercises():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07"]
    with_exercises = {p.name[:2] for p in LESSONS if lessons.exercises(lessons.read(p))}
    assert with_exercises >= {"01", "02", "04", "06", "07"}


@pytest.mark.parametrize("path", LESSONS, ids=ids(LESSONS))
def test_every_exercise_is_a_placeholder_with_a_hidden_answer(path):
    nb = lessons.read(path)
    for i, answer in lessons.exercises(nb):
        exercise, answer_cell = nb.cells[i].source, nb.cells[i + 1].source
        assert "..." in exercise, f"exercise cell {i} has no ... for the learner to fill in"
        assert "..." not in answer, f"the answer to exercise cell {i} still has a placeholder"
        assert "<details>" in answer_cell and "<summary>" in answer_cell, \
            f"the answer to exercise cell {i} is not collapsed (<details>)"
        compile(exercise, f"{path.name}, cell {i}", "exec")  # the placeholder itself runs
        compile(answer, f"{path.name}, the answer to cell {i}", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in LESSONS if lessons.exercises(lessons.read(p))],
                         ids=ids([p for p in LESSONS if lessons.exercises(lessons.read(p))]))
def test_an_unsolved_first_exercise_is_checked_with_not_yet(path):
    """The notebook as a learner opens it, run to the check after its first exercise:
    the check says "not yet" instead of failing or passing."""
    nb = lessons.read(path)
    first = lessons.exercises(nb)[0][0]
    check = next(i for i in range(first + 2, len(nb.cells)) if nb.cells[i].cell_type == "code")
    ran = lessons.execute(nb, path, upto=check + 1)
    printed = "".join(out.get("text", "") for out in ran.cells[check].outputs)
    assert "not yet" in printed, printed


@pytest.mark.parametrize("path", LESSONS, ids=ids(LESSONS))
def test_every_number_the_text_quotes_is_one_its_outputs_print(path):
    """A number with three or more decimals in the text must be printed by a cell of the
    lesson (or drawn in one of its graphs), so that the text cannot drift from its outputs."""
    nb = lessons.read(path)
    printed = " ".join(str(part) for cell in nb.cells if cell.cell_type == "code"
                       for part in lessons.comparable(cell.outputs))
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for number in QUOTED.findall(FENCED.sub("", cell.source)):
            assert number in printed, f"{path.name}, cell {i} quotes {number}, which no output prints"


@pytest.mark.slow
def test_lesson_4_without_torch_does_everything_but_the_comparison_and_says_so():
    path = next(p for p in LESSONS if p.name.startswith("04_"))
    nb = lessons.answered(lessons.read(path))
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nsys.modules['torch'] = None  # import torch now fails"))
    ran = lessons.execute(nb, path)
    printed = "".join(out.get("text", "") for cell in ran.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "torch is not installed, so this part is skipped" in printed
    assert printed.count("gradcheck: backward agrees with finite differences") == 5  # every check but the wrong ones
    assert "max difference" not in printed
