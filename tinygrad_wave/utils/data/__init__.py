"""torch.utils.data for what makemore.py and the lectures use: a Dataset, a DataLoader that
batches it, and the samplers that choose the order, drawing as torch's do so that a seeded
run sees torch's batches."""
from .dataloader import DataLoader, default_collate
from .dataset import Dataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate", "Sampler", "SequentialSampler",
           "RandomSampler", "BatchSampler"]
