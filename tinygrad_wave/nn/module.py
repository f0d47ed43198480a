"""torch.nn.Module and its containers: a model is a tree of modules, and the tree
is read from the modules' own attributes, in the order they were first set.

- an attribute holding a `Parameter` is a parameter (trained, in state_dict);
- one named by `register_buffer` is a buffer (state, not trained: a running mean,
  gpt.py's causal mask); any other tensor attribute is neither, as in torch;
- one holding a Module is a child, and so is its subtree.

torch keeps the three kinds in dicts of their own, filled by its __setattr__;
here they are read from `vars(module)`, a dict that keeps its keys in the order
they were set. __setattr__ does only what that order cannot: a name that becomes a
parameter or a child goes to the end (a placeholder `self.head = None` set first
must not put head first), and a name that held a parameter, a child or a buffer
refuses a value of another kind, where it would silently stop being trained or
saved. The jit is not told of assignments: it learns of `training` when a module
is called (watch.Watcher.module_called), and train()/eval(), the one place a mode
changes, tells it of each module's new mode.

The order everything is visited in is torch's, since it decides which random
draws initialise which weight: named_modules is pre-order (a module, then each
child's subtree in order), `apply` post-order (children first, then the module),
named_parameters goes module by module in named_modules' order, and state_dict
lists a module's parameters, then its buffers, then each child's entries.
"""
import collections.abc
from collections import OrderedDict, namedtuple

from .. import backend, watch
from ..autograd import no_grad
from ..optim import forget_gradients
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module trains: a leaf that requires grad (by default), found by
    parameters(). It shares the memory (and version counter) of the tensor it wraps."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter wraps a tensor, not a {type(data).__name__}")
        super().__init__(data.detach(), requires_grad, device=data.device)
        self._data, self._version = data._data, data._version  # shared, not the copy Tensor() makes

    @classmethod
    def _wrap(cls, data, device, node, version=None):
        """What an op makes of a parameter is a plain tensor (w.T, w[ix], w * 2), as in torch."""
        return Tensor._wrap(data, device, node, version)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


# what load_state_dict returns, as torch's _IncompatibleKeys
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """torch.nn.Module: subclass it, call super().__init__(), set parameters, buffers and
    submodules as attributes, and write forward(). Calling the module runs forward."""

    def __init__(self):
        object.__setattr__(self, "_kinds", {})  # name -> "parameter" or "module": what it was registered as
        self.training = True
        self._buffer_names = {}  # name -> persistent (in state_dict); its value is the attribute

    def __setattr__(self, name, value):
        """Set the attribute, with torch's order and refusals (see the top of this file)."""
        kinds = vars(self).get("_kinds")
        if kinds is None:  # before Module.__init__: torch refuses parameters and modules there
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before Module.__init__() "
                                     f"call: call super().__init__() first")
            return object.__setattr__(self, name, value)
        kind = "parameter" if isinstance(value, Parameter) else "module" if isinstance(value, Module) else None
        registered = kinds.get(name)
        if registered and value is not None and kind not in (registered, "parameter"):  # (a Parameter may take
            # any name, as in torch; so may a module a buffer's, below)
            wanted = "torch.nn.Parameter" if registered == "parameter" else "torch.nn.Module"
            raise TypeError(f"cannot assign {type(value).__name__!r} as {registered} {name!r} "
                            f"({wanted} or None expected)")
        buffer_names = vars(self).get("_buffer_names", {})
        if name in buffer_names and kind is None and value is not None and not isinstance(value, Tensor):
            raise TypeError(f"cannot assign {type(value).__name__!r} as buffer {name!r} (a tensor or None expected)")
        if kind and kind != registered:  # newly a parameter or a child: last in its kind's order, as in torch
            vars(self).pop(name, None)
            kinds[name] = kind
            buffer_names.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        vars(self).get("_kinds", {}).pop(name, None)
        vars(self).get("_buffer_names", {}).pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} has no forward(): write one")

    def __call__(self, *args, **kwargs):
        if watch.watcher is not None and not kwargs:  # (the watcher's call takes positional arguments)
            return watch.watcher.module_called(self, args)
        return self.forward(*args, **kwargs)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not trained: moved by to(), saved by state_dict
        (unless persistent=False), never returned by parameters()."""
        if "_buffer_names" not in vars(self):
            raise AttributeError("cannot register a buffer before Module.__init__(): call super().__init__() first")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}, ...) takes a tensor or None, not {type(tensor).__name__}")
        if "." in name or not name:
            raise KeyError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if name not in self._buffer_names and (name in vars(self) or hasattr(type(self), name)):
            raise KeyError(f"attribute '{name}' already exists")
        self._buffer_names[name] = persistent
        object.__setattr__(self, name, tensor)  # a buffer even when it is a Parameter, as in torch

    def register_parameter(self, name, param):
        """self.name = param, for a name made at run time: a Parameter, or None for a slot that
        holds none yet (it keeps its place, and refuses anything but a Parameter later)."""
        self._register(name, param, "parameter", Parameter)

    def add_module(self, name, module):
        """self.name = module, for a name made at run time (None: a slot for one later)."""
        self._register(name, module, "module", Module)

    register_module = add_module

    def _register(self, name, value, kind, cls):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        if self._kinds.get(name) != kind and (name in vars(self) or hasattr(type(self), name)):
            raise KeyError(f"attribute '{name}' already exists")
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"cannot assign {type(value).__name__!r} object to {kind} {name!r} "
                            f"({cls.__name__} or None required)")
        setattr(self, name, value)
        self._kinds[name] = kind  # (a None too: the slot is this kind's, in this place)

    def get_submodule(self, target):
        """The module at a dotted path ("blocks.0.attn"), "" for this one."""
        module = self
        for name in target.split(".") if target else []:
            module = _attribute(module, name)
            if not isinstance(module, Module):
                raise AttributeError(f"`{name}` is not an nn.Module")
        return module

    def get_parameter(self, target):
        """The parameter at a dotted path ("blocks.0.attn.weight")."""
        path, _, name = target.rpartition(".")
        param = _attribute(self.get_submodule(path), name)
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return param

    def get_buffer(self, target):
        """The buffer at a dotted path ("blocks.0.attn.tril")."""
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if name not in module._buffer_names:
            raise AttributeError(f"`{name}` is not a buffer")
        return getattr(module, name)

    # --- the tree --------------------------------------------------------------------------

    def _child_slots(self):
        """(name, module) for every attribute holding a module, a module held twice twice."""
        return [(name, value) for name, value in vars(self).items() if isinstance(value, Module)]

    def named_children(self):
        """(name, module) of each direct child, a module held under two names once (torch's)."""
        seen = set()
        for name, child in self._child_slots():
            if id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        return (module for _, module in self.named_children())

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted path, module) for this module and every module below it, pre-order;
        a module reached twice comes once (unless remove_duplicate=False)."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._child_slots():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        return (module for _, module in self.named_modules())

    def apply(self, fn):
        """fn(module) for every module, children first (post-order), as torch: gpt.py's
        self.apply(self._init_weights) draws each weight in this order."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _own_parameters(self):
        return [(name, value) for name, value in vars(self).items()
                if isinstance(value, Parameter) and name not in self._buffer_names]

    def _own_buffers(self):
        return [(name, getattr(self, name)) for name in self._buffer_names if getattr(self, name) is not None]

    def _named_members(self, own, prefix, recurse):
        """(dotted name, tensor) of own(module) for each module, each tensor once."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, t in own(module):
                if id(t) not in seen:
                    seen.add(id(t))
                    yield f"{path}.{name}" if path else name, t

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members(Module._own_parameters, prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members(Module._own_buffers, prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # --- modes and gradients ------------------------------------------------------------------

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be a bool, got {mode!r}")
        if watch.watcher is not None:  # the one place a mode changes tells the watcher (the jit replays it)
            watch.watcher.attribute_set(self, "training", mode)
        self.training = mode
        for child in self.children():
            child.train(mode)  # through each child's own train(), which a subclass may extend
        return self

    def eval(self):
        return self.train(False)

    @watch.one_call  # a captured step replays the clearing by calling zero_grad() again (makemore.py's)
    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (None), or with set_to_none=False make it zeros."""
        forget_gradients(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # --- state ---------------------------------------------------------------------------------

    def _state_tensors(self, prefix=""):
        """(key, tensor) of state_dict, in torch's order: own parameters, own persistent
        buffers, then each child's."""
        for name, p in self._own_parameters():
            yield prefix + name, p
        for name, b in self._own_buffers():
            if self._buffer_names[name]:
                yield prefix + name, b
        for name, child in self._child_slots():  # a module held twice is saved under both names, as torch's
            yield from child._state_tensors(f"{prefix}{name}.")

    def state_dict(self):
        """{key: tensor} with torch's keys ('blocks.0.ln1.weight'); each tensor shares the
        module's memory, outside the graph, as torch's does."""
        return OrderedDict((key, t.detach()) for key, t in self._state_tensors())

    def load_state_dict(self, state_dict, strict=True):
        """Copy the values of `state_dict` (tensors or arrays) into the module's tensors.
        strict: every key must match, or RuntimeError, as in torch."""
        own = dict(self._state_tensors())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                               f"missing keys {missing}, unexpected keys {unexpected}")
        with no_grad():
            for key, t in own.items():
                if key in state_dict:
                    value = state_dict[key]
                    array = backend.to_array(value._data if isinstance(value, Tensor) else value, t.dtype, t.device)
                    if array.shape != t.shape:
                        raise RuntimeError(f"size mismatch for {key}: copying a param with shape "
                                           f"{tuple(array.shape)}, the shape in the current model is {t.shape}")
                    watch.tensor_written(t, "load_state_dict")
                    t._write(array)
        return IncompatibleKeys(missing, unexpected)

    def to(self, *args, device=None, dtype=None):
        """Move and/or cast every parameter and buffer in place: to("cuda"), to(torch.float64),
        to("cuda", torch.float64). All or nothing: every new array is made before any changes."""
        device, dtype = backend.device_and_dtype(args, device, dtype)
        tensors = [t for _, t in self.named_parameters()] + [t for _, t in self.named_buffers()]
        # as torch: a dtype casts the floating-point tensors only (a mask or a count keeps its own)
        converted = [t._converted(device, dtype if backend.is_floating(t.dtype) else None) for t in tensors]
        for t, (data, grad) in zip(tensors, converted):
            t._grad, t.device = grad, device or t.device
            t._replace(data)
        return self

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def cpu(self):
        return self.to("cpu")

    # --- print(model) ----------------------------------------------------------------------------

    def extra_repr(self):
        """The arguments shown between the parentheses of repr(module)."""
        return ""

    def __repr__(self):
        """torch's print(model): the module's name and arguments, then each child, indented."""
        lines = [line for line in self.extra_repr().split("\n") if line]
        children = self._child_slots()
        lines += [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: children named "0", "1", ... kept in order, read and
    changed as a list is; after an insertion or a deletion they are numbered again, as torch's."""

    def __len__(self):
        return len(self._child_slots())

    def __iter__(self):
        return iter([module for _, module in self._child_slots()])

    def append(self, module):
        _add_child(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __iadd__(self, modules):
        self._check_addable(modules)
        return self.extend(modules)

    def __add__(self, other):
        self._check_addable(other)
        return self._joined([*self, *other])

    def _check_addable(self, other):
        """Any iterable of modules (a Sequential takes only a Sequential)."""

    def insert(self, index, module):
        if not -len(self) <= index <= len(self):
            raise IndexError(f"Index out of range: {index}")
        modules = list(self)
        modules.insert(index, module)
        self._renumber(modules)

    def pop(self, index=-1):
        module = self[index]
        del self[index]
        return module

    def __setitem__(self, index, module):
        name = self._child_slots()[index][0]  # (an IndexError past the end, as a list's)
        _add_child(self, name, module)

    def __delitem__(self, index):
        modules = list(self)
        del modules[index]
        self._renumber(modules)

    def _renumber(self, modules):
        for name, _ in self._child_slots():
            delattr(self, name)
        for module in modules:
            self.append(module)


class Sequential(_ModuleSequence):
    """The modules run one after another: Sequential(m0, m1, ...), or one OrderedDict of
    named modules. Children are named "0", "1", ... as in torch's state_dict keys."""

    def __init__(self, *modules):
        super().__init__()
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) else (
            (str(i), m) for i, m in enumerate(modules))
        for name, module in named:
            _add_child(self, name, module)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def __getitem__(self, i):
        children = self._child_slots()
        if isinstance(i, slice):
            return type(self)(OrderedDict(children[i]))
        return children[i][1]

    def insert(self, index, module):
        super().insert(index, module)
        return self  # (torch's Sequential returns itself here, its ModuleList nothing)

    def _check_addable(self, other):
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")

    @staticmethod
    def _joined(modules):
        return Sequential(*modules)


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters the model owns (a plain list would hide them)."""

    def __init__(self, modules=None):
        super().__init__()
        self.extend(modules or ())

    def __getitem__(self, i):
        children = [module for _, module in self._child_slots()]
        return type(self)(children[i]) if isinstance(i, slice) else children[i]

    @staticmethod
    def _joined(modules):
        return ModuleList(modules)

    def __repr__(self):
        """torch's: a run of modules that print alike is one line, `(0-2): 3 x Linear(...)`."""
        runs = []  # [first index, last index, the text they print]
        for i, module in enumerate(self):
            text = repr(module).replace("\n", "\n  ")
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        if not runs:
            return "ModuleList()"
        lines = [(f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x ") + text
                 for first, last, text in runs]
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules whose parameters the model owns, in insertion order."""

    def __init__(self, modules=None):
        super().__init__()
        for name, module in dict(modules or {}).items():
            self[name] = module

    def __setitem__(self, name, module):
        _add_child(self, name, module)

    def __getitem__(self, name):
        return dict(self._child_slots())[name]

    def __delitem__(self, name):
        self[name]  # (a KeyError for a name it does not hold)
        delattr(self, name)

    def update(self, modules):
        """Add or replace modules from a dict or (name, module) pairs, in their order."""
        for name, module in (modules.items() if isinstance(modules, (collections.abc.Mapping, ModuleDict)) else modules):
            self[name] = module

    def pop(self, name):
        module = self[name]
        del self[name]
        return module

    def clear(self):
        for name in list(self):
            del self[name]

    def __contains__(self, name):
        return name in dict(self._child_slots())

    def __len__(self):
        return len(self._child_slots())

    def __iter__(self):
        return iter([name for name, _ in self._child_slots()])

    def keys(self):
        return list(self)

    def values(self):
        return [module for _, module in self._child_slots()]

    def items(self):
        return self._child_slots()


def _attribute(module, name):
    """module.name, or torch's AttributeError where it has none."""
    if not hasattr(module, name):
        raise AttributeError(f"{type(module).__name__} has no attribute `{name}`")
    return getattr(module, name)


def _add_child(container, name, module):
    """A container's child under `name`, refused where it would hide one of its methods."""
    if not isinstance(module, Module):
        raise TypeError(f"{type(container).__name__} holds Modules, not {type(module).__name__}")
    taken = hasattr(type(container), name) or not isinstance(vars(container).get(name, container), Module)
    if not isinstance(name, str) or not name or "." in name or taken:  # (taken: a method, `training`, ...)
        raise KeyError(f"module name {name!r} is not allowed: a non-empty string without '.' that is "
                       f"not an attribute of {type(container).__name__}")
    setattr(container, name, module)
