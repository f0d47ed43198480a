"""The (batched) matrix product, the op most of a network's time goes into."""
import math

from ..autograd import Function
from .elementwise import unbroadcast


class MatMul(Function):
    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: "
                             f"{a.shape[-1]} columns against {b.shape[-2]} rows")
        self.a, self.b = a, b
        if b.ndim == 2:
            # (..., K) @ (K, N) as one (M, K) @ (K, N) GEMM on a reshaped view:
            # a single BLAS call is faster than numpy's stacked matmul here.
            return (rows(a) @ b).reshape(*a.shape[:-1], b.shape[1])
        return a @ b

    def reads_input(self, i):
        return self.needs_grad[1 - i]  # da = g @ b^T reads b, db = a^T @ g reads a

    def backward(self, g):
        """out = a @ b, out_ij = sum_k a_ik b_kj:
            d out_ij / d a_ik = b_kj  =>  da_ik = sum_j g_ij b_kj,  da = g @ b^T
            d out_ij / d b_kj = a_ik  =>  db_kj = sum_i a_ik g_ij,  db = a^T @ g

        With batch dims, b's gradient sums over every batch entry that used it:
        for a 2-D b that is one GEMM over the flattened batch, a2^T @ g2."""
        a, b = self.a, self.b
        ga = gb = None
        if b.ndim == 2:
            g2 = rows(g)
            if self.needs_grad[0]:
                ga = (g2 @ b.T).reshape(a.shape)
            if self.needs_grad[1]:
                gb = rows(a).T @ g2
        else:
            swap = self.xp.swapaxes
            if self.needs_grad[0]:
                ga = unbroadcast(g @ swap(b, -1, -2), a.shape)
            if self.needs_grad[1]:
                gb = unbroadcast(swap(a, -1, -2) @ g, b.shape)
        return ga, gb


def rows(a):
    """a's batch dims flattened into rows: (..., K) -> (M, K). (M spelled out, not -1: for K = 0
    NumPy cannot infer it.)"""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])
