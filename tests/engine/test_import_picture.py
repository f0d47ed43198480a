"""The import picture: the core knows nothing of who watches it.

The engine tells watchers what it does through tinygrad_wave/watch.py; the jit and
the teaching tools listen there. An import from the core up into either would be
a call up into a listener, which the seam exists to avoid.
"""
import ast
from pathlib import Path

import tinygrad_wave

PACKAGE = Path(tinygrad_wave.__file__).parent
LISTENERS = ("jit", "teach")
ABOVE_THE_CORE = ("training", "checkpoint", "divergence", "runfolder", "cli", "stopping", "data", "models")  # jobs built on the core


def imported_modules(path):
    """The tinygrad_wave modules (and names) a file imports, without the package prefix."""
    here = ["tinygrad_wave", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import jit` names a module
    return {m.removeprefix("tinygrad_wave.") for m in found if m.startswith("tinygrad_wave.")}


def core_files():
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if top not in LISTENERS + ABOVE_THE_CORE + ("__init__",):
            yield path


def test_no_core_module_imports_the_jit_or_teach():
    files = list(core_files())
    assert any(p.name == "autograd.py" for p in files) and any(p.name == "optim.py" for p in files)
    for path in files:
        for module in imported_modules(path):
            assert module.split(".")[0] not in LISTENERS, f"{path.relative_to(PACKAGE)} imports {module}"


def test_the_seam_imports_nothing_of_the_package():
    assert imported_modules(PACKAGE / "watch.py") == set()


def test_the_picture_reads_relative_imports():
    """The parser itself: `from . import backend, watch` and `from ..autograd import Function` are seen."""
    assert {"backend", "watch"} <= imported_modules(PACKAGE / "optim.py")
    assert "autograd.Function" in imported_modules(PACKAGE / "ops" / "shape.py")
