"""torch.utils.tensorboard.SummaryWriter: a run's numbers as TensorBoard event files, which
`tensorboard --logdir runs` shows while the run goes on.

The files are written by tensorboardX (setup.cfg's scripts extra), a maintained writer of
TensorBoard's format; this class hands it plain numbers and host arrays, so that a tensor on
either device can be logged as torch's writer takes one.
"""
try:
    import tensorboardX
except ImportError as e:  # torch's own writer refuses the same way without its package
    raise ImportError("tinygrad_wave.utils.tensorboard writes TensorBoard files through tensorboardX: "
                      'pip install tensorboardX (or pip install -e ".[scripts]")') from e

from ..tensor import Tensor


class SummaryWriter:
    """Writes events into `log_dir` (default runs/DATE_TIME_HOST plus `comment`, as torch's)."""

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120, filename_suffix=""):
        self._writer = tensorboardX.SummaryWriter(logdir=log_dir, comment=comment, purge_step=purge_step,
                                                  max_queue=max_queue, flush_secs=flush_secs,
                                                  filename_suffix=filename_suffix)
        self.log_dir = self._writer.logdir
        self._queue = dict(max_queue=max_queue, flush_secs=flush_secs, filename_suffix=filename_suffix)
        self._scalars_writers = {}  # add_scalars' runs, by folder

    def get_logdir(self):
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None):
        """One number (a Python number or a one-element tensor) at `global_step`."""
        self._writer.add_scalar(tag, float(scalar_value), global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Several numbers drawn in one chart: each tag's in a run of its own, the folder
        log_dir/MAIN_TAG_TAG (slashes in main_tag made _), as torch names it."""
        for tag, value in tag_scalar_dict.items():
            folder = f"{self.log_dir}/{main_tag.replace('/', '_')}_{tag}"
            if folder not in self._scalars_writers:
                self._scalars_writers[folder] = tensorboardX.FileWriter(folder, **self._queue)
            self._scalars_writers[folder].add_summary(tensorboardX.summary.scalar(main_tag, float(value)),
                                                      global_step, walltime)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None):
        """The distribution of `values` (a tensor or an array) at `global_step`."""
        values = values.detach().numpy() if isinstance(values, Tensor) else values
        self._writer.add_histogram(tag, values, global_step, bins, walltime, max_bins)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        self._writer.add_text(tag, text_string, global_step, walltime)

    def flush(self):
        """Write what is queued to disk now (the writer also does it every flush_secs)."""
        for writer in [self._writer, *self._scalars_writers.values()]:
            writer.flush()

    def close(self):
        for writer in [self._writer, *self._scalars_writers.values()]:
            writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
