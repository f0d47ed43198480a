"""The small ops, one Function each: forward computes, backward applies the chain rule.

Notation in every derivation: out = f(inputs), g = dL/d out (the upstream
gradient, the shape of out), n a count, i an element; each backward returns
dL/d input. Split by kind:

    elementwise.py  + - * / neg pow exp log log10 sqrt abs tanh sigmoid relu, casts
    reductions.py   sum mean max min (and the dims they take)
    shape.py        reshape, transpose, indexing, cat, item assignment, expand, roll, take_along_dim
    matmul.py       batched matrix product
    select.py       masked_fill, where, tril/triu, clamp: a value or another, by a mask

The fused ops (batch norm, layer norm, cross-entropy, softmax) live in functional.py.
"""
from .elementwise import (Abs, Add, Clone, Div, Exp, Log, Log10, Mul, Neg, Pow, ReLU, RPow, Sigmoid, Sqrt, Sub, Tanh,
                          To, unbroadcast)
from .matmul import MatMul
from .reductions import Max, Mean, Std, Sum, Var, matvec_sum, max_kept, normalize_dims, sum_of_products
from .select import Clamp, MaskedFill, Triangle, Where
from .shape import Cat, Expand, Index, Reshape, Roll, SetItem, TakeAlongDim, Transpose, ViewWrite
