"""Run the lessons with their answers filled in, and compare what they print with the page.

A lesson's exercise is a code cell tagged `exercise` whose lines end in `...`
placeholders; the markdown cell right after it, tagged `answer`, holds the answer
as a ```python block inside a collapsed <details>. `answered(nb)` is the notebook
with every exercise replaced by its answer: what CI runs, and what the saved
outputs come from, so that a learner who solved an exercise sees the page's numbers.

Compared cell by cell after a fresh run: every text output exactly (printed
streams, and the text of results and displays); an SVG (a draw_dot graph) by the
text in its boxes, in order, not by where graphviz put them; a PNG (a matplotlib
figure) only by being there, since its pixels change with the fonts and the
matplotlib version while its numbers are printed beside it.

To save fresh outputs after changing a lesson (or the engine):

    PYTHONPATH=$PWD python tests/lessons.py                 # every lesson
    PYTHONPATH=$PWD python tests/lessons.py docs/lessons/02_the_graph.ipynb
"""
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

LESSONS = Path(__file__).resolve().parent.parent / "docs" / "lessons"
ANSWER_CODE = re.compile(r"```python\n(.*?)```", re.S)
SVG_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)
TIMEOUT_S = 600  # per cell: lesson 3's training runs take a minute on a loaded 2-core machine


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
    """What of a cell's outputs a fresh run must repeat (see the module's docstring)."""
    kept = []
    for out in outputs:
        if out.output_type == "stream":
            kept.append((out.name, out.text))
        elif out.output_type == "error":
            kept.append(("error", out.ename, out.evalue))
        else:
            data = out.get("data", {})
            kept.append(("text/plain", data.get("text/plain")))
            if "image/svg+xml" in data:
                kept.append(("svg text", SVG_TEXT.findall(data["image/svg+xml"])))
            if "image/png" in data:
                kept.append(("png",))
    return kept


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


def differences(saved, fresh):
    """One line for each code cell whose fresh outputs differ from the saved ones."""
    found = []
    for i, (a, b) in enumerate(zip(saved.cells, fresh.cells)):
        if a.cell_type == "code" and comparable(merged(a.outputs)) != comparable(merged(b.outputs)):
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
