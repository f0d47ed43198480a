"""Run the lessons with their answers filled in, and compare what they print with the page.

A lesson's exercise is a code cell tagged `exercise` whose lines end in `...`
placeholders; the markdown cell right after it, tagged `answer`, holds the answer
as a ```python block inside a collapsed <details>. `answered(nb)` is the notebook
with every exercise replaced by its answer: what CI runs, and what the saved
outputs come from, so that a learner who solved an exercise sees the page's numbers.

Compared cell by cell after a fresh run: every text output (printed streams, and
the text of results and displays); an SVG (a draw_dot graph) by the text in its
boxes, in order, not by where graphviz put them; a PNG (a matplotlib figure) only
by being there, since its pixels change with the fonts and the matplotlib version
while its numbers are printed beside it.

Text is compared word for word, but the numbers in it by value (`same_text`),
because another CPU prints other last digits: OpenBLAS picks its kernels by CPU
(Haswell, SkylakeX, ...) and by thread count, and each sums in its own order.
A number printed with a decimal point may differ from the saved one by the largest
of:
  * RTOL of its size: float32 rounding, grown over a thousand training steps, moves
    a trained loss by a few 1e-4 relative, and a real change by far more;
  * one unit of its last printed digit: 0.795 prints as 0.79 or 0.80 (not for a
    printed zero: 0.0 is how Python prints a difference that is exactly zero);
  * ATOL, float32's epsilon: a number this small is rounding noise around zero
    (a mean of normalised values, a float64 difference of 1e-17).
An integer (a count, a shape, a step number) must be the same.
Three tags on a code cell say that part of its output cannot be repeated elsewhere:
  * `sampled`: it prints words drawn at random (names sampled from a trained model),
    and a change in a last digit of the model can change a draw; its numbers and
    its number of lines are compared, not its words;
  * `chaotic`: it trains a network that amplifies rounding differences (lesson 3's
    saturated one), so its numbers differ from CPU to CPU from the second digit on;
    its words are compared and how many numbers it prints, not their values. What
    the text says of such numbers is checked by a test of its own;
  * `timed`: it prints how long something took; compared as a `chaotic` cell.

To save fresh outputs after changing a lesson (or the engine):

    PYTHONPATH=$PWD python tests/support/lessons.py                 # every lesson
    PYTHONPATH=$PWD python tests/support/lessons.py docs/lessons/02_the_graph.ipynb
"""
import copy
import html
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

LESSONS = Path(__file__).resolve().parents[2] / "docs" / "lessons"
ANSWER_CODE = re.compile(r"```python\n(.*?)```", re.S)
SVG_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)
TIMEOUT_S = 600  # per cell: lesson 3's training runs take a minute on a loaded 2-core machine
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")  # not the 0 of layers.0.weight
RTOL = 1e-3
ATOL = 1.2e-7


def lessons():
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def read(path):
    return nbformat.read(str(path), as_version=4)


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def exercises(nb):
    """(index of the exercise cell, the answer's code) for every exercise of a notebook."""
    found = []
    for i, cell in enumerate(nb.cells):
        if "exercise" not in tags(cell):
            continue
        following = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        if following is None or "answer" not in tags(following):
            raise ValueError(f"exercise cell {i} is not followed by a markdown cell tagged 'answer'")
        code = ANSWER_CODE.findall(following.source)
        if len(code) != 1:
            raise ValueError(f"the answer to exercise cell {i} needs exactly one ```python block, has {len(code)}")
        found.append((i, code[0].rstrip("\n")))
    return found


def answered(nb):
    """A copy of the notebook with every exercise cell's placeholder replaced by its answer."""
    nb = copy.deepcopy(nb)
    for i, code in exercises(nb):
        nb.cells[i].source = code
    return nb


def execute(nb, path, upto=None):
    """Run the notebook (its first `upto` cells, or all) in a fresh kernel, in the lesson's folder."""
    if upto is not None:
        nb = copy.deepcopy(nb)
        nb.cells = nb.cells[:upto]
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def comparable(outputs):
    """What of a cell's outputs a fresh run must repeat (see the module's docstring), as text."""
    kept = []
    for out in outputs:
        if out.output_type == "stream":
            kept.append(f"{out.name}: {out.text}")
        elif out.output_type == "error":
            kept.append(f"error: {out.ename}: {out.evalue}")
        else:
            data = out.get("data", {})
            kept.append(f"text/plain: {data.get('text/plain')}")
            if "image/svg+xml" in data:
                boxes = SVG_TEXT.findall(data["image/svg+xml"])
                kept.append("svg text: " + " | ".join(html.unescape(box) for box in boxes))  # &#45; is a minus
            if "image/png" in data:
                kept.append("png")
    return kept


def last_digit(number):
    """One unit of the last digit printed: 0.01 for "2.35", 1e-05 for "2.6e-04"."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def same_number(saved, fresh):
    if "." not in saved and "e" not in saved.lower():
        return saved.lstrip("+") == fresh.lstrip("+")  # an integer: a count, a shape, a step
    rounding = last_digit(saved) if float(saved) != 0 else 0.0
    tolerance = max(RTOL * abs(float(saved)), rounding, ATOL)
    return abs(float(fresh) - float(saved)) <= tolerance * (1 + 1e-9)  # 0.80 - 0.79 is 0.010000000000000009


def same_text(saved, fresh, words=True, numbers=True):
    """The same words and, within their tolerances, the same numbers (the module's docstring).
    words=False: only the same number of lines; numbers=False: only as many numbers."""
    saved_numbers, fresh_numbers = NUMBER.findall(saved), NUMBER.findall(fresh)
    if len(saved_numbers) != len(fresh_numbers):
        return False
    if words and NUMBER.split(saved) != NUMBER.split(fresh):
        return False
    if not words and saved.count("\n") != fresh.count("\n"):
        return False
    return not numbers or all(map(same_number, saved_numbers, fresh_numbers))


def merged(outputs):
    """Consecutive prints to one stream as one output, however the kernel split them."""
    result = []
    for out in outputs:
        if out.output_type == "stream" and result and result[-1].output_type == "stream" \
                and result[-1].name == out.name:
            result[-1] = nbformat.from_dict({**result[-1], "text": result[-1].text + out.text})
        else:
            result.append(out)
    return result


def same_outputs(saved_cell, fresh_cell):
    saved, fresh = comparable(merged(saved_cell.outputs)), comparable(merged(fresh_cell.outputs))
    words = "sampled" not in tags(saved_cell)
    numbers = not {"chaotic", "timed"} & set(tags(saved_cell))
    return len(saved) == len(fresh) and all(same_text(a, b, words, numbers) for a, b in zip(saved, fresh))


def differences(saved, fresh):
    """One line for each code cell whose fresh outputs differ from the saved ones."""
    found = []
    for i, (a, b) in enumerate(zip(saved.cells, fresh.cells)):
        if a.cell_type == "code" and not same_outputs(a, b):
            found.append(f"cell {i}: saved {comparable(merged(a.outputs))!r}\n"
                         f"         fresh {comparable(merged(b.outputs))!r}")
    return found


def save(path):
    """Run the lesson with its answers and save the outputs under the learner's placeholders."""
    nb = read(path)
    fresh = execute(answered(nb), path)
    for cell, ran in zip(nb.cells, fresh.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    nbformat.write(nb, str(path))


if __name__ == "__main__":
    for name in sys.argv[1:] or lessons():
        print("running", name)
        save(Path(name).resolve())
