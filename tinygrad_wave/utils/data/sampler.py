"""Samplers: the order in which a DataLoader reads a dataset's examples.

RandomSampler draws as torch's does, so a seed gives torch's batches:
- without a generator of its own it seeds a fresh one at the start of each pass, from one
  64-bit number of the global generator (torch's `torch.empty((), dtype=torch.int64).random_()`:
  two words, the first high, below 2**63);
- with replacement: randint(n) in chunks of 32 indices, drawn as the chunks are reached;
- without: one randperm(n) per whole pass over the data, and the head of another for the rest.
"""
import itertools

from ...random import Generator, randint, randperm


class Sampler:
    """The base of a sampler: __iter__ yields dataset indices (and __len__ says how many)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__, as a torch Sampler does")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1, every pass."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices: a shuffle of the data (replacement=False), or num_samples independent
    draws (replacement=True), from `generator` or from the global generator as torch does."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement = data_source, replacement
        self._num_samples, self.generator = num_samples, generator
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        generator = self.generator if self.generator is not None else Generator().manual_seed(fresh_seed())
        if self.replacement:  # (num_samples may be 1e10, as makemore's: chunks drawn one by one)
            for _ in range(self.num_samples // 32):
                yield from randint(n, (32,), generator=generator).tolist()
            yield from randint(n, (self.num_samples % 32,), generator=generator).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from randperm(n, generator=generator).tolist()
            yield from randperm(n, generator=generator).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


def fresh_seed(generator=None):
    """A seed for a new generator, drawn as torch's int64 `random_()` draws one: a 64-bit
    number below 2**63."""
    return int(randint(0, 2 ** 63, (), generator=generator))


class BatchSampler(Sampler):
    """Lists of batch_size indices from `sampler`; the last one shorter unless drop_last."""

    def __init__(self, sampler, batch_size, drop_last):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self):
        whole, rest = divmod(len(self.sampler), self.batch_size)
        return whole + (rest > 0 and not self.drop_last)
