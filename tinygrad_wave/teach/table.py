"""Rows that print one a line, their values lined up however long their labels.

A row is a label ("layer 12 (Tanh):", a gradient's name) and the values after it.
Printed alone it pads its label to its kind's usual width; a Table pads every
label to the longest one, so the columns after it line up for any names.
"""
from dataclasses import asdict


class Row:
    label_width = 0  # printed alone, the label takes at least this many characters

    def label(self):
        raise NotImplementedError

    def values(self):
        raise NotImplementedError

    def line(self, width):
        return f"{self.label():<{width}} {self.values()}"

    def __str__(self):
        return self.line(self.label_width)


class Table(list):
    """Rows printed one a line, labels padded to the longest; each row a dict in `.records()` (for JSON)."""

    def __str__(self):
        width = max([row.label_width for row in self] + [len(row.label()) for row in self], default=0)
        return "\n".join(row.line(width) for row in self)

    def records(self):
        return [asdict(row) for row in self]
