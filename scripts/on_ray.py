"""Starting Ray for the scripts that spread training runs over cores or machines
(sweep.py's trials, reproduce.py's rows and seeds)."""
import os
from importlib.util import find_spec
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
MISSING = 'Ray is not installed: the sweep extra installs it (pip install -e ".[sweep]")'


def ray_installed():
    return find_spec("ray") is not None and find_spec("ray.tune") is not None


def start_ray(address=None, cpus=None):
    """Ray started on this machine for this script alone (on `cpus` cores, default all), or
    the running cluster at `address` ("auto" on one of its machines). Its workers import
    train.py and tinygrad_wave from where this process does: on a cluster, every machine
    needs the project at the same path."""
    import ray
    path = os.pathsep.join([str(SCRIPTS), str(SCRIPTS.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(address=address, num_cpus=cpus, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path}})
