"""torch's dtype names, each the NumPy dtype it stands for: tinygrad_wave.float32
(and .float, .long, .int, ...) can be passed wherever a dtype is taken, and
compares equal to a tensor's .dtype."""
from .backend import as_dtype

float32 = float = as_dtype("float32")  # noqa: A001 (torch's names)
float64 = double = as_dtype("float64")
float16 = half = as_dtype("float16")
int64 = long = as_dtype("int64")
int32 = int = as_dtype("int32")  # noqa: A001
int16 = short = as_dtype("int16")
int8 = as_dtype("int8")
uint8 = as_dtype("uint8")
bool = as_dtype("bool")  # noqa: A001

__all__ = ["float32", "float", "float64", "double", "float16", "half", "int64", "long", "int32", "int",
           "int16", "short", "int8", "uint8", "bool"]
