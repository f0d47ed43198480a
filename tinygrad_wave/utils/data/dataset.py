"""Datasets: anything with __len__ and __getitem__(i) giving the i-th example."""


class Dataset:
    """The base a dataset subclasses (makemore's CharDataset does): write __len__ and __getitem__."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__, as a torch Dataset does")


class TensorDataset(Dataset):
    """Example i is (t[i] for each tensor t): tensors of inputs and targets, sliced together."""

    def __init__(self, *tensors):
        if not tensors or any(t.size(0) != tensors[0].size(0) for t in tensors):
            raise ValueError("TensorDataset needs tensors with the same size in dim 0 "
                             f"(got sizes {[t.size(0) for t in tensors]})")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].size(0)
