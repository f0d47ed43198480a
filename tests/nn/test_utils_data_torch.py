"""torch.utils.data against torch's: the same seed gives the same batches.

Each dataset here hands back its own index, so a batch shows exactly which examples a loader
read and in which order. Both libraries run the same code (`lib` is torch or tinygrad_wave);
after the loaders both global generators must still be in step (the next rand agrees), which
catches a draw made too often, too rarely or at the wrong moment.
"""
import collections

import numpy as np
import pytest
import torch

import tinygrad_wave as tw
from tinygrad_wave.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler, TensorDataset

LIBS = {"torch": torch, "tinygrad_wave": tw}


def indices_dataset(lib, n):
    return lib.utils.data.TensorDataset(lib.arange(n))


def batches(loader, count=None):
    """The index batches of one pass (or of its first `count` batches), as lists."""
    out = []
    for i, (batch,) in enumerate(loader):
        out.append(batch.tolist())
        if count is not None and i + 1 == count:
            break
    return out


def in_both(run):
    """run(lib) in each library, from the same global seed; returns both results and checks
    that the global generators end in step."""
    results = []
    for lib in LIBS.values():
        lib.manual_seed(3407)
        results.append(run(lib))
    np.testing.assert_array_equal(tw.rand(3).numpy(), torch.rand(3).numpy())
    return results


@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (100, 32, False), (7, 7, True)])
def test_shuffled_epochs_are_torchs(n, batch_size, drop_last):
    def run(lib):
        loader = lib.utils.data.DataLoader(indices_dataset(lib, n), batch_size=batch_size, shuffle=True,
                                           drop_last=drop_last)
        return len(loader), [batches(loader) for epoch in range(3)]
    ours, theirs = in_both(run)
    assert ours == theirs


def test_shuffle_with_a_generator_leaves_the_global_one_alone():
    def run(lib):
        g = lib.Generator().manual_seed(7)
        loader = lib.utils.data.DataLoader(indices_dataset(lib, 50), batch_size=8, shuffle=True, generator=g)
        return [batches(loader) for epoch in range(2)]
    ours, theirs = in_both(run)
    assert ours == theirs


def test_evaluate_style_loaders_each_pass_cut_short_are_torchs():
    """makemore's evaluate(): a new shuffled loader per call, left after a few batches."""
    def run(lib):
        dataset = indices_dataset(lib, 1000)
        return [batches(lib.utils.data.DataLoader(dataset, shuffle=True, batch_size=100, num_workers=0), count=3)
                for call in range(4)]
    ours, theirs = in_both(run)
    assert ours == theirs


@pytest.mark.parametrize("num_samples, num_workers", [(5, 0), (32, 0), (70, 0), (int(1e10), 2)])
def test_infinite_loader_with_replacement_is_torchs(num_samples, num_workers):
    """makemore's InfiniteDataLoader: RandomSampler(replacement=True, num_samples=1e10), one
    iterator kept, next() called step after step; the sampler draws 32 indices at a time.
    torch's worker processes (num_workers=2) return the same batches as the main process."""
    def run(lib):
        dataset = indices_dataset(lib, 1000)
        sampler = lib.utils.data.RandomSampler(dataset, replacement=True, num_samples=num_samples)
        loader = lib.utils.data.DataLoader(dataset, sampler=sampler, batch_size=12, pin_memory=True,
                                           num_workers=num_workers)
        it = iter(loader)
        drawn = []
        for step in range(20):
            try:
                (batch,) = next(it)
            except StopIteration:  # a short num_samples: start again, as InfiniteDataLoader does
                it = iter(loader)
                (batch,) = next(it)
            drawn.append(batch.tolist())
        return drawn
    with pytest.warns(UserWarning, match="pin_memory"):  # torch's, without a GPU; ours accepts it quietly
        ours, theirs = in_both(run)
    assert ours == theirs


@pytest.mark.parametrize("replacement, num_samples", [(False, None), (False, 3), (False, 25), (True, None), (True, 40)])
def test_random_sampler_is_torchs(replacement, num_samples):
    def run(lib):
        g = lib.Generator().manual_seed(1)
        sampler = lib.utils.data.RandomSampler(range(10), replacement, num_samples, generator=g)
        return len(sampler), [list(sampler) for epoch in range(3)], list(lib.utils.data.RandomSampler(range(10)))
    ours, theirs = in_both(run)
    assert ours == theirs


def test_sequential_order_and_lengths_are_torchs():
    def run(lib):
        loader = lib.utils.data.DataLoader(indices_dataset(lib, 10), batch_size=4)
        return len(loader), batches(loader), list(lib.utils.data.SequentialSampler(range(5)))
    ours, theirs = in_both(run)
    assert ours == theirs


class Examples(Dataset):
    """Example i as makemore's CharDataset gives one (x, y), and as a dict with numbers and a string."""

    def __init__(self, lib, as_dict):
        self.lib, self.as_dict = lib, as_dict

    def __len__(self):
        return 6

    def __getitem__(self, i):
        x = self.lib.arange(4) * i
        if self.as_dict:
            return {"x": x, "count": i, "weight": i / 4, "name": "n" * i, "pair": (i, -i)}
        return x, x.float() / 2


@pytest.mark.parametrize("as_dict", [False, True])
def test_default_collation_is_torchs(as_dict):
    ours = next(iter(DataLoader(Examples(tw, as_dict), batch_size=4)))
    theirs = next(iter(torch.utils.data.DataLoader(Examples(torch, as_dict), batch_size=4)))
    assert type(ours) is type(theirs)
    flat = [(ours, theirs)]
    while flat:
        a, b = flat.pop()
        if isinstance(b, torch.Tensor):
            assert a.dtype == b.numpy().dtype
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        elif isinstance(b, dict):
            assert a.keys() == b.keys()
            flat.extend((a[k], b[k]) for k in b)
        elif isinstance(b, list) and b and not isinstance(b[0], str):
            assert type(a) is list and len(a) == len(b)
            flat.extend(zip(a, b))
        else:
            assert a == b


def test_tensor_dataset_slices_its_tensors_together():
    x, y = tw.arange(6).view(3, 2), tw.tensor([5, 6, 7])
    dataset = TensorDataset(x, y)
    assert len(dataset) == 3 and dataset[1][0].tolist() == [2, 3] and dataset[1][1].item() == 6
    with pytest.raises(ValueError, match="same size in dim 0"):
        TensorDataset(x, tw.arange(4))


@pytest.mark.parametrize("kwargs, error", [
    (dict(shuffle=True, sampler=[0, 1]), "mutually exclusive with shuffle"),
    (dict(batch_size=0), "positive integer"),
    (dict(num_workers=-1), "non-negative"),
    (dict(batch_sampler=[[0]], batch_size=2), "mutually exclusive"),
])
def test_bad_loader_arguments_get_torchs_error(kwargs, error):
    with pytest.raises(ValueError, match=error):
        torch.utils.data.DataLoader(indices_dataset(torch, 4), **kwargs)
    with pytest.raises(ValueError, match=error):
        DataLoader(indices_dataset(tw, 4), **kwargs)


@pytest.mark.parametrize("kwargs, error", [(dict(replacement=1), TypeError), (dict(num_samples=0), ValueError)])
def test_bad_sampler_arguments_get_torchs_error(kwargs, error):
    with pytest.raises(error, match="should be"):
        torch.utils.data.RandomSampler(range(3), **kwargs)
    with pytest.raises(error, match="should be"):
        RandomSampler(range(3), **kwargs)


def test_a_dataset_without_getitem_says_so():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        next(iter(DataLoader(type("Empty", (Dataset,), {"__len__": lambda self: 2})())))
    assert list(SequentialSampler([9, 9])) == [0, 1]


def test_a_sampler_with_replacement_draws_its_chunks_only_as_they_are_reached():
    """torch's sampler draws 32 indices at a time, when the loader reaches them: a generator
    shared with other draws must be exactly as far along as torch's after each batch (a
    sampler that drew its 1e10 indices up front would also never yield its first batch)."""
    def run(lib):
        g = lib.Generator().manual_seed(5)
        dataset = indices_dataset(lib, 100)
        sampler = lib.utils.data.RandomSampler(dataset, replacement=True, num_samples=int(1e10), generator=g)
        it = iter(lib.utils.data.DataLoader(dataset, sampler=sampler, batch_size=20))
        return [(next(it)[0].tolist(), lib.randint(1000, (2,), generator=g).tolist()) for batch in range(4)]
    ours, theirs = in_both(run)
    assert ours == theirs


def described(batch):
    """A collated batch as plain values: container types by name, tensors as (dtype, values)."""
    if hasattr(batch, "tolist") and hasattr(batch, "dtype"):
        return str(batch.dtype).removeprefix("torch."), batch.tolist()
    if isinstance(batch, dict):
        return {key: described(value) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch).__name__, [described(value) for value in batch]
    return batch


def test_default_collate_keeps_torchs_types():
    """A namedtuple comes back as itself, a tuple as a list, strings as they come (a tuple inside
    a tuple's field); NumPy arrays and numbers become tensors of their own dtype."""
    Pair = collections.namedtuple("Pair", "x y")
    examples = [[Pair(1, 2.0), Pair(3, 4.0)], [("a", 1), ("b", 2)], ["a", "b"], [{"k": (1, "s")}, {"k": (2, "t")}],
                [np.ones(2, np.float32), np.zeros(2, np.float32)], [np.int64(3), np.int64(4)],
                [np.float32(1.5), np.float32(2)], [np.bool_(True), np.bool_(False)], [[1, 2], [3, 4]]]
    for batch in examples:
        ours = described(tw.utils.data.default_collate(batch))
        theirs = described(torch.utils.data.default_collate(batch))
        assert ours == theirs, batch
