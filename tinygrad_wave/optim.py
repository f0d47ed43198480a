"""Optimisers: they read .grad and change .data, outside the graph."""


class SGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        """p <- p - lr * dL/dp, in place, for every parameter that has a gradient."""
        for p in self.params:
            if p.grad is not None:
                p.data -= self.lr * p.grad

    def zero_grad(self):
        """Forget the gradients: the next backward starts from nothing (torch's set_to_none)."""
        for p in self.params:
            p.grad = None
