"""torch.save and torch.load, in a file that never runs code when it is read.

torch.save writes a pickle, and unpickling a file can run any code its author chose. Here a
saved object is an .npz archive: every tensor (and NumPy array) one member, read by NumPy
with allow_pickle=False, and everything around them -- dicts, lists, tuples, numbers,
strings, None -- a JSON tree in which each tensor is named by its member:

    {"dict": [["weight", {"tensor": "a0", "device": "cpu", "requires_grad": false}], ...]}

Dicts keep their order and their keys' types (an optimiser's state is keyed by ints), so
`load(save(state))` gives back what `state_dict()` gave. A file from PyTorch's torch.save is
refused with one line saying why and what to do.

The same format, host arrays plus a JSON string in one .npz, is train.py's checkpoint
(checkpoint.py): save_arrays, load_meta and load_arrays below are what both use.
"""
import json
import math
import os
import zipfile

import numpy as np

from . import backend
from .tensor import Tensor

FORMAT = "tinygrad_wave.save 1"
TORCH_REFUSAL = ("{path} was written by PyTorch's torch.save: a pickle, which runs code when it is "
                 "loaded, so tinygrad_wave.load does not read it. Load it with PyTorch, turn each tensor "
                 "into tinygrad_wave.tensor(t.numpy()), and save that with tinygrad_wave.save.")


def save(obj, f):
    """Write `obj` (tensors, arrays, numbers, strings, None, and dicts, lists and tuples of
    them: a state_dict, an optimiser's, or a checkpoint dict of both) to the path `f`."""
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"save writes to a path (str or os.PathLike), not {type(f).__name__}")
    arrays = {}
    tree = _encode(obj, arrays)
    shapes = {name: list(a.shape) for name, a in arrays.items()}
    save_arrays(f, arrays, {"format": FORMAT, "object": tree, "shapes": shapes})


def _encode(obj, arrays):
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"float": repr(obj)}  # nan, inf: strict JSON has neither
    if isinstance(obj, Tensor) or backend.is_array(obj):
        name = f"a{len(arrays)}"
        if isinstance(obj, Tensor):
            arrays[name] = obj.numpy()
            return {"tensor": name, "device": str(obj.device), "requires_grad": obj.requires_grad}
        arrays[name] = backend.to_host(obj)
        return {"array": name}
    if isinstance(obj, dict):
        return {"dict": [[_encode(key, arrays), _encode(value, arrays)] for key, value in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"tuple" if isinstance(obj, tuple) else "list": [_encode(item, arrays) for item in obj]}
    raise TypeError(f"save stores tensors, arrays, numbers, strings, None and dicts, lists and tuples of "
                    f"them, not {type(obj).__name__}")


def load(f, map_location=None, weights_only=None):
    """What save wrote to the path `f`. Tensors come back on the device they were saved
    from, or all on `map_location` ("cpu", "cuda"). weights_only is accepted and changes
    nothing: no file read here can run code."""
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"map_location must be a device name such as 'cpu', not {type(map_location).__name__}")
    path = os.fspath(f)
    meta = _meta(path)
    arrays = load_arrays(path, meta["shapes"])
    return _decode(meta["object"], arrays, map_location)


def _meta(path):
    """The JSON tree of a file save wrote; a torch file, or any other, refused with why."""
    with open(path, "rb") as file:
        start = file.read(2)
    if start[:1] == b"\x80":  # a pickle's protocol opcode: torch.save's legacy format
        raise ValueError(TORCH_REFUSAL.format(path=path))
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a file tinygrad_wave.save wrote (that is an .npz archive)")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.endswith("data.pkl") for name in names):  # torch.save's zip holds a pickle
        raise ValueError(TORCH_REFUSAL.format(path=path))
    meta = load_meta(path) if "__meta__.npy" in names else {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is an .npz archive, but not one tinygrad_wave.save wrote")
    return meta


def _decode(node, arrays, map_location):
    if not isinstance(node, dict):
        return node
    if "tensor" in node:
        device = map_location or node["device"]
        return Tensor(arrays[node["tensor"]], requires_grad=node["requires_grad"], device=device)
    (kind, value), = node.items()  # every other node is {kind: value}
    if kind == "array":
        return arrays[value]
    if kind == "float":
        return float(value)
    if kind == "dict":
        return {_decode(k, arrays, map_location): _decode(v, arrays, map_location) for k, v in value}
    items = [_decode(item, arrays, map_location) for item in value]
    return tuple(items) if kind == "tuple" else items


# --- the format: an .npz of arrays plus a JSON string, written atomically -------------

def atomic_write(path, write):
    """Call write(f) on a binary file beside `path`, then rename it over `path`: a
    crash or a kill mid-write leaves the old file whole, never a half-written one."""
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as f:
            write(f)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):  # the write failed: no debris
            os.unlink(partial)


def save_arrays(path, arrays, meta):
    """An .npz of host arrays plus a JSON string, loadable without pickle, written atomically."""
    host = {name: backend.to_host(a) for name, a in arrays.items()}
    atomic_write(path, lambda f: np.savez(f, __meta__=np.array(json.dumps(meta)), **host))


def load_meta(path):
    """The JSON string of an .npz written by save_arrays, without reading its arrays."""
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["__meta__"]))


def load_arrays(path, shapes):
    """The arrays named in `shapes` (name -> shape) from an .npz written by save_arrays.
    Each member's header is checked against its shape before its data is read, and
    other members are never read: a damaged or hostile file cannot make us allocate."""
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for name, shape in shapes.items():
            with archive.open(f"{name}.npy") as member:
                version = np.lib.format.read_magic(member)
                if version not in read_header:
                    raise ValueError(f"{name} is in .npy format {version}, which save_arrays never writes")
                stored = read_header[version](member)[0]
            if stored != tuple(shape):
                raise ValueError(f"{name} has shape {stored}, expected {tuple(shape)}")
            with archive.open(f"{name}.npy") as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays
