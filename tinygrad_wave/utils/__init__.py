"""torch.utils's names that makemore.py uses: `data` (Dataset, DataLoader, samplers) and
`tensorboard` (SummaryWriter, imported on its own as torch's is, since it needs tensorboardX)."""
from . import data

__all__ = ["data"]
