"""DataLoader: a dataset read in batches, in the order a sampler gives.

Each pass (each `iter(loader)`) first draws one 64-bit number from `generator` (the global
generator when there is none), the seed torch hands its worker processes, before the sampler
draws its own: torch makes that draw even with no workers, so skipping it would shift every
later random number. Examples are read in this process; `num_workers` and `pin_memory` are
accepted and change nothing the loader yields (torch's workers return the same batches, in order).
"""
import collections.abc

import numpy as np

from ...toplevel import stack
from ...tensor import Tensor
from .sampler import BatchSampler, RandomSampler, SequentialSampler, fresh_seed


def default_collate(batch):
    """One batch from a list of examples, as torch's default_collate: tensors and NumPy arrays
    stacked along a new dim 0 (their dtype kept), Python ints and floats made int64 and float64
    tensors (NumPy's numbers keep their dtype), strings left as they come, and dicts, tuples and
    lists collated field by field: a namedtuple comes back as itself, a tuple as a list, as torch
    gives them."""
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(batch, 0)
    if isinstance(first, np.ndarray):
        return stack([Tensor(example) for example in batch], 0)
    if isinstance(first, (np.number, np.bool_)):
        return Tensor(np.array(batch))
    if isinstance(first, (bool, int, float)):
        return Tensor(list(batch), dtype="float64" if isinstance(first, float) else None)
    if isinstance(first, str):
        return batch
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([example[key] for example in batch]) for key in first}
    if isinstance(first, collections.abc.Sequence):
        if any(len(example) != len(first) for example in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(field) for field in zip(*batch)]
        return type(first)(*fields) if isinstance(first, tuple) and hasattr(first, "_fields") else fields
    raise TypeError(f"default_collate: batch must contain tensors, arrays, numbers, strings, dicts or lists; "
                    f"found {type(first).__name__}")


class DataLoader:
    """Batches of `dataset`: batch_size examples at a time, in the order of `sampler` (shuffled
    with `shuffle=True`, in order otherwise), each batch made by `collate_fn`."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, generator=None):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last")
        if batch_size is None:
            raise ValueError("batch_size=None (examples one at a time, uncollated) is not supported here; "
                             "use batch_size=1")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        else:
            batch_size, drop_last = None, False
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.collate_fn = collate_fn or default_collate

    def __iter__(self):
        fresh_seed(self.generator)  # torch's workers' base seed, drawn when the pass starts
        return self._batches(iter(self.batch_sampler))

    def _batches(self, indices):
        for batch in indices:
            yield self.collate_fn([self.dataset[i] for i in batch])

    def __len__(self):
        return len(self.batch_sampler)
