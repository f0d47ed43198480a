"""The lessons run with their answers, print what their pages show, and quote their own numbers.

tests/support/lessons.py says how a lesson is run and compared, and how to save fresh outputs.
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


def stdout_of(cell):
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=ids(LESSONS))
def test_a_fresh_run_with_the_answers_prints_the_saved_outputs(path):
    saved = lessons.read(path)
    fresh = lessons.execute(lessons.answered(saved), path)
    found = lessons.differences(saved, fresh)
    assert not found, (f"{path.name} prints something else than its saved outputs, beyond the tolerances of "
                       "tests/support/lessons.py; if the change is meant, save them again with `python tests/support/lessons.py "
                       f"docs/lessons/{path.name}` and check the numbers its text quotes:\n" + "\n".join(found))


@pytest.mark.parametrize("saved, fresh", [
    ("largest |dlogit_maxes|: 1.1058862159352145e-17", "largest |dlogit_maxes|: 1.0842021724855044e-17"),
    ("data mean 2.46e-09 std 0.866", "data mean -1.13e-09 std 0.866"),  # float32 noise around zero
    ("dim 0 only 2.3477, dims (0, 1) 2.3316", "dim 0 only 2.3476, dims (0, 1) 2.3316"),  # a trained loss, 4e-5 off
    ("mean +0.00, std 0.80, 4.6x the guide", "mean -0.00, std 0.79, 4.7x the guide"),  # the last digit rounded
    ("std 1.721085e-05", "std 1.721086e-05"),
])
def test_numbers_that_differ_by_rounding_are_the_same(saved, fresh):
    assert lessons.same_text(saved, fresh)


@pytest.mark.parametrize("saved, fresh", [
    ("validation loss 2.3316", "validation loss 2.3416"),  # a real change: 4e-3 relative
    ("std 2.6e-04", "std 4.8e-04"),
    ("largest difference: 0.0", "largest difference: 1.430511474609375e-06"),  # not zero any more
    ("std 0.80", "std 0.78"),  # two units of the last digit
    ("Buffers: 768", "Buffers: 769"),  # an integer is exact
    ("(4, 4, 128)", "(4, 2, 128)"),
    ("exact: True  | maxdiff: 0.0", "exact: False | maxdiff: 0.0"),  # a word
    ("anylea", "anella"),
    ("loss 3.2970", "loss 3.2970 3.1"),  # a number more
])
def test_a_real_change_is_caught(saved, fresh):
    assert not lessons.same_text(saved, fresh)


def test_a_sampled_cell_compares_its_numbers_and_lines_not_its_words():
    assert lessons.same_text("anylea\nkakan\nloss 2.1607", "anella\nkakan\nloss 2.1608", words=False)
    assert not lessons.same_text("anylea\nkakan\n", "anella\n", words=False)
    assert not lessons.same_text("anylea\nloss 2.1607", "anella\nloss 2.2607", words=False)


def test_a_chaotic_cell_compares_its_words_and_how_many_numbers_not_their_values():
    assert lessons.same_text("mean of the last 100 steps 3.238", "mean of the last 100 steps 3.778", numbers=False)
    assert not lessons.same_text("mean of the last 100 steps 3.238", "mean of the first 100 steps 3.778",
                                 numbers=False)


def test_there_are_seven_lessons_and_all_but_3_have_exercises():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07"]
    with_exercises = {p.name[:2] for p in LESSONS if lessons.exercises(lessons.read(p))}
    assert with_exercises >= {"01", "02", "04", "05", "06", "07"}


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


WITH_EXERCISES = [p for p in LESSONS if lessons.exercises(lessons.read(p))]


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=ids(WITH_EXERCISES))
def test_an_unsolved_lesson_runs_to_the_end_and_every_check_says_not_yet(path):
    """The notebook as a learner opens it, run top to bottom before solving anything: no cell
    raises because of a placeholder, and the check after each exercise says "not yet"."""
    nb = lessons.read(path)
    ran = lessons.execute(nb, path)  # raises CellExecutionError, naming the cell, if one fails
    for exercise, _ in lessons.exercises(nb):
        check = next(i for i in range(exercise + 2, len(nb.cells)) if nb.cells[i].cell_type == "code")
        printed = stdout_of(ran.cells[check])
        assert "not yet" in printed, f"{path.name}, cell {check}, the check of exercise cell {exercise}: {printed}"


def run_past_the_chaotic_cell(lesson, cells_after=0):
    """(the lesson's saved cells, its first cells run afresh with the answers, up to its cell
    tagged `chaotic` and `cells_after` more, and the chaotic cell's index)."""
    path = next(p for p in LESSONS if p.name.startswith(lesson))
    nb = lessons.read(path)
    chaotic = next(i for i, cell in enumerate(nb.cells) if "chaotic" in lessons.tags(cell))
    return nb.cells, lessons.execute(lessons.answered(nb), path, upto=chaotic + cells_after + 1).cells, chaotic


@pytest.mark.slow
def test_lesson_3s_chaotic_network_shows_what_its_text_says():
    """The first network of lesson 3 prints other numbers on every CPU (its cell is tagged
    `chaotic`); the text quotes only what every run shows, and this checks those claims."""
    saved, ran, naive = run_past_the_chaotic_cell("03_")
    printed_now = stdout_of(ran[naive])
    careful = "".join(stdout_of(cell) for cell in saved[naive + 1:] if cell.cell_type == "code")

    def numbers(pattern, text=printed_now):
        return [float(x) for x in re.findall(pattern, text)]

    assert numbers(r"loss at the first step (\S+),") == [16.94]
    assert 3.0 < numbers(r"mean of the last 100 steps (\S+)")[0] < 4.0  # "still above 3"
    assert all(93.0 <= x <= 99.9 for x in numbers(r"saturated: (\S+)%")), printed_now  # "about 95 to 99%"
    gradient_std = r"\(Tanh\):\s+mean \S+, std (\S+e-\d+)"  # not the activations' "std 0.99,"
    spreads = numbers(gradient_std)
    assert len(spreads) == 3 and all(1e-4 <= x <= 1e-3 for x in spreads), printed_now
    assert min(spreads) > 5 * max(numbers(gradient_std, careful))  # "about ten times"
    guide = dict(re.findall(r"(layers\.\d+\.weight) +\S+, a step of \S+ times the weight, (\S+)x the guide",
                            printed_now))
    assert 4.0 <= float(guide["layers.0.weight"]) <= 9.0 and float(guide["layers.8.weight"]) < 1.0, guide
    assert max(map(float, guide.values())) >= 5 * min(map(float, guide.values())), guide  # "a factor of five or more"


@pytest.mark.slow
def test_lesson_5s_buggy_batch_norm_ends_worse_than_the_fix_on_any_cpu():
    """The buggy model's val loss changes in its third digit from CPU to CPU (its cell is tagged
    `chaotic`); the text says only that the fix's is lower, by about 0.02."""
    _, ran, buggy = run_past_the_chaotic_cell("05_", cells_after=2)  # then its text, then the fixed run
    worse, fixed = (float(re.search(r"validation loss (\S+)", stdout_of(ran[i])).group(1)) for i in (buggy, buggy + 2))
    assert 0.005 < worse - fixed < 0.05, (worse, fixed)


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
