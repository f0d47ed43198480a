"""tinygrad_wave.nn against torch.nn: the module system and torch's layers.

A model built after manual_seed(s) in both libraries must have the same parameters
under the same names in the same order (the order decides which random draws go to
which weight: construction order, then apply's post-order), the same buffers and
state_dict keys, and its layers must compute torch's outputs and gradients.
"""
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tinygrad_wave as tw
import tinygrad_wave.nn as nn
from tinygrad_wave import jit

from conftest import host

LIBRARIES = {"tinygrad_wave": tw, "torch": torch}


def a_model(lib):
    """A small model with every container and layer, the way GPT code nests them."""
    lnn = lib.nn

    class Tiny(lnn.Module):
        def __init__(self):
            super().__init__()
            self.embed = lnn.Embedding(11, 8)
            self.blocks = lnn.Sequential(*[lnn.Sequential(lnn.LayerNorm(8), lnn.Linear(8, 32), lnn.GELU(),
                                                          lnn.Linear(32, 8), lnn.Dropout(0.1)) for _ in range(2)])
            self.heads = lnn.ModuleList([lnn.Linear(8, 4, bias=False) for _ in range(3)])
            self.named = lnn.ModuleDict({"norm": lnn.BatchNorm1d(8), "act": lnn.ReLU()})
            self.register_buffer("tril", lib.tril(lib.ones(5, 5)))
            self.register_buffer("scratch", lib.zeros(3), persistent=False)
            self.head = lnn.Linear(8, 11)

    lib.manual_seed(1337)
    return Tiny()


def both(build):
    return build(tw), build(torch)


def assert_same_tensors(ours, theirs, what, rtol=0, atol=0):
    ours, theirs = list(ours), list(theirs)
    assert [name for name, _ in ours] == [name for name, _ in theirs], what
    for (name, a), (_, b) in zip(ours, theirs):
        np.testing.assert_allclose(host(a), host(b), rtol=rtol, atol=atol, err_msg=f"{what}: {name}")


# --- the tree, in torch's order ---------------------------------------------------------------------

def test_same_seed_same_parameters_same_names():
    """Linear's kaiming-uniform weight and uniform bias are torch's numbers exactly; Embedding's
    normal rows to float32 rounding (torch's vectorised log/cos, random.py's docstring)."""
    ours, theirs = both(a_model)
    assert_same_tensors(ours.named_parameters(), theirs.named_parameters(), "parameters", rtol=1e-6, atol=1e-7)
    linear_weights = [(n, p) for n, p in ours.named_parameters() if n.startswith(("blocks", "heads", "head"))]
    torch_weights = [(n, p) for n, p in theirs.named_parameters() if n.startswith(("blocks", "heads", "head"))]
    assert_same_tensors(linear_weights, torch_weights, "Linear and LayerNorm parameters, exactly")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_buffers_and_state_dict_keys_are_torchs():
    ours, theirs = both(a_model)
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # "scratch" is not persistent: not in either
    assert "tril" not in [n for n, _ in ours.named_parameters()]  # a buffer is not trained


def test_modules_children_and_apply_order_are_torchs():
    ours, theirs = both(a_model)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    visited = {"tinygrad_wave": [], "torch": []}
    ours.apply(lambda m: visited["tinygrad_wave"].append(type(m).__name__))
    theirs.apply(lambda m: visited["torch"].append(type(m).__name__))
    assert visited["tinygrad_wave"] == visited["torch"]  # post-order: children before their parent


def test_apply_init_draws_as_torch():
    """gpt.py's self.apply(self._init_weights): normal_(0, 0.02) and zeros_, drawn in apply's order."""
    def initialised(lib):
        model = a_model(lib)

        def init_weights(m):
            if isinstance(m, lib.nn.Linear):
                lib.nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    lib.nn.init.zeros_(m.bias)
            elif isinstance(m, lib.nn.Embedding):
                lib.nn.init.normal_(m.weight, mean=0.0, std=0.02)
        return model.apply(init_weights)
    ours, theirs = both(initialised)
    assert_same_tensors(ours.named_parameters(), theirs.named_parameters(), "after apply", rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("init, args", [("uniform_", (-0.3, 0.7)), ("normal_", (0.5, 2.0)), ("zeros_", ()),
                                        ("ones_", ()), ("constant_", (0.25,)), ("kaiming_uniform_", ()),
                                        ("kaiming_uniform_", (math.sqrt(5),)),
                                        ("kaiming_uniform_", (0, "fan_out", "relu"))])
@pytest.mark.parametrize("shape", [(7, 3), (40, 24), (2, 3, 5)], ids=str)
def test_init_functions_are_torchs(init, args, shape):
    results = []
    for lib in (tw, torch):
        lib.manual_seed(7)
        results.append(getattr(lib.nn.init, init)(lib.zeros(shape), *args))
    np.testing.assert_allclose(host(results[0]), host(results[1]), rtol=1e-6, atol=1e-7)


def test_train_eval_reach_every_module_and_return_the_model():
    ours = a_model(tw)
    assert ours.eval() is ours and not any(m.training for m in ours.modules())
    assert ours.train() is ours and all(m.training for m in ours.modules())
    with pytest.raises(ValueError, match="bool"):
        ours.train("no")


def test_containers_index_as_torchs():
    ours, theirs = both(a_model)
    assert len(ours.blocks) == len(theirs.blocks) == 2 and len(ours.heads) == 3
    assert isinstance(ours.blocks[0][1], nn.Linear) and ours.blocks[-1] is list(ours.blocks)[1]
    assert [type(m).__name__ for m in ours.blocks[0][1:3]] == ["Linear", "GELU"]
    assert list(ours.named.keys()) == list(theirs.named.keys()) and "norm" in ours.named
    named = nn.Sequential(OrderedDict(first=nn.Linear(2, 3), act=nn.Tanh()))
    assert list(named.state_dict()) == list(torch.nn.Sequential(OrderedDict(
        first=torch.nn.Linear(2, 3), act=torch.nn.Tanh())).state_dict()) == ["first.weight", "first.bias"]
    ours.heads.append(nn.Linear(8, 2))
    assert len(ours.heads) == 4 and "heads.3.weight" in ours.state_dict()
    with pytest.raises(KeyError, match="not allowed"):
        nn.ModuleDict({"train": nn.ReLU()})  # would hide Module.train


def test_print_model_is_torchs():
    """The whole tree, indented, a ModuleList's run of equal heads folded as torch folds it."""
    ours, theirs = both(a_model)
    assert repr(ours) == repr(theirs) and "(0-2): 3 x Linear" in repr(ours)
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_repr_is_torchs_for_each_layer():
    for build in (lambda lib: lib.nn.Linear(3, 4), lambda lib: lib.nn.Linear(3, 4, bias=False),
                  lambda lib: lib.nn.Embedding(5, 2), lambda lib: lib.nn.LayerNorm(6), lambda lib: lib.nn.ReLU(),
                  lambda lib: lib.nn.GELU(approximate="tanh"), lambda lib: lib.nn.Dropout(0.2),
                  lambda lib: lib.nn.BatchNorm1d(4), lambda lib: lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Tanh())):
        assert repr(build(tw)) == repr(build(torch))


def test_a_module_held_twice_is_one_child_and_initialised_once():
    """torch's children() and apply() visit a module held under two names once, so the draws after
    it go to the weights they go to in torch; its containers and state_dict still list it twice."""
    def tied(lib):
        lib.manual_seed(0)
        model = lib.nn.Module()
        model.enc = lib.nn.Linear(3, 3)
        model.dec = model.enc
        model.head = lib.nn.Linear(3, 2)
        lib.manual_seed(1)
        return model.apply(lambda m: lib.nn.init.normal_(m.weight, std=0.02) if isinstance(m, lib.nn.Linear) else None)
    ours, theirs = both(tied)
    assert_same_tensors(ours.named_parameters(), theirs.named_parameters(), "after apply", rtol=1e-6, atol=1e-9)
    assert len(list(ours.children())) == len(list(theirs.children())) == 2
    assert list(ours.state_dict()) == list(theirs.state_dict())  # enc.* and dec.* both
    linear = nn.Linear(2, 2)
    assert len(nn.ModuleList([linear] * 3)) == 3 and len(list(nn.ModuleList([linear] * 3).children())) == 1
    assert len(nn.Sequential(linear, linear)) == 2


@pytest.mark.parametrize("slot, value", [("weight", "plain tensor"), ("child", 3), ("buffer", 3)])
def test_a_slot_refuses_a_value_of_another_kind_as_torch(slot, value):
    """A plain tensor where a parameter was would silently stop being trained and saved; torch
    refuses it (and an int for a child or a buffer) with TypeError. None is accepted in each."""
    for lib in (tw, torch):
        model = lib.nn.Linear(2, 2)
        model.child = lib.nn.ReLU()
        model.register_buffer("buffer", lib.zeros(2))
        with pytest.raises(TypeError, match="cannot assign"):
            setattr(model, slot, lib.zeros(2, 2) if value == "plain tensor" else value)
        setattr(model, slot, None)
        assert getattr(model, slot) is None


def test_an_attribute_that_becomes_a_parameter_or_a_module_goes_last_as_in_torch():
    """A placeholder set to None first must not put its parameters first: the order decides which
    draws apply() gives which weight."""
    def built(lib):
        class Model(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = None
                self.scale = None
                self.body = lib.nn.Linear(3, 3)
                self.head = lib.nn.Linear(3, 2)
                self.scale = lib.nn.Parameter(lib.ones(2))
        lib.manual_seed(0)
        return Model()
    ours, theirs = both(built)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == [
        "scale", "body.weight", "body.bias", "head.weight", "head.bias"]
    assert_same_tensors(ours.named_parameters(), theirs.named_parameters(), "parameters")


def test_register_buffer_keeps_a_parameter_a_buffer_and_refuses_a_taken_name_as_torch():
    """A Parameter registered as a buffer is not trained; a name that holds anything else already
    is refused before anything changes; a module's name may take a Parameter."""
    for lib in (tw, torch):
        model = lib.nn.Linear(2, 2)
        model.register_buffer("pe", lib.nn.Parameter(lib.ones(3)))
        assert [n for n, _ in model.named_buffers()] == ["pe"]
        assert [n for n, _ in model.named_parameters()] == ["weight", "bias"]
        model.note = 1
        for taken in ("weight", "note"):
            with pytest.raises(KeyError, match="already exists"):
                model.register_buffer(taken, lib.ones(2))
        assert [n for n, _ in model.named_buffers()] == ["pe"]
        model.child = lib.nn.ReLU()
        model.child = lib.nn.Parameter(lib.ones(2))
        assert [n for n, _ in model.named_parameters()] == ["weight", "bias", "child"]


def test_a_buffer_deleted_or_made_a_parameter_leaves_the_buffers_as_in_torch():
    for lib in (tw, torch):
        model = lib.nn.Module()
        model.register_buffer("kept", lib.zeros(2))
        model.register_buffer("gone", lib.zeros(2))
        model.register_buffer("trained", lib.zeros(2))
        del model.gone
        model.trained = lib.nn.Parameter(lib.ones(2))
        assert [n for n, _ in model.named_buffers()] == ["kept"]
        assert list(model.state_dict()) == ["trained", "kept"]


def test_train_goes_through_each_childs_own_train_as_in_torch():
    """A module that extends train() (to freeze a part, say) is told of its parent's eval()."""
    for lib in (tw, torch):
        class Counting(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.modes = []

            def train(self, mode=True):
                self.modes.append(mode)
                return super().train(mode)
        model = lib.nn.Sequential(lib.nn.Sequential(Counting()))
        model.eval()
        model.train()
        assert model[0][0].modes == [False, True]


@pytest.mark.parametrize("container", ["Sequential", "ModuleList"])
def test_a_sequence_of_modules_changes_as_a_list_and_numbers_again_as_torchs(container):
    def changed(lib):
        lnn = lib.nn
        lib.manual_seed(0)
        a, b, c, d = (lnn.Linear(2, 2) for _ in range(4))
        seq = getattr(lnn, container)(*[a, b]) if container == "Sequential" else lnn.ModuleList([a, b])
        seq.append(c)
        seq.insert(1, d)           # a d b c
        seq[0] = lnn.Tanh()        # Tanh d b c
        popped = seq.pop(2)        # Tanh d c
        del seq[0]                 # d c
        seq += lnn.Sequential(lnn.ReLU())  # d c ReLU (a Sequential takes only a Sequential)
        both = seq + seq
        try:
            seq + [lnn.ReLU()]
            added_a_list = "added"
        except ValueError:
            added_a_list = "ValueError"
        return ([type(m).__name__ for m in seq], list(seq.state_dict()), popped is b, len(both),
                [type(m).__name__ for m in both], type(both).__name__, added_a_list)
    assert changed(tw) == changed(torch)


def test_a_module_dict_updates_pops_and_clears_as_torchs():
    def changed(lib):
        lnn = lib.nn
        modules = lnn.ModuleDict({"a": lnn.ReLU(), "b": lnn.Tanh()})
        modules.update({"c": lnn.ReLU(), "a": lnn.Tanh()})
        modules.update([("d", lnn.ReLU())])
        popped = type(modules.pop("b")).__name__
        del modules["c"]
        seen = [(name, type(m).__name__) for name, m in modules.items()], popped
        modules.clear()
        return seen, len(modules)
    assert changed(tw) == changed(torch)


def test_names_made_at_run_time_and_dotted_paths_as_torchs():
    """register_parameter, add_module and get_submodule/get_parameter/get_buffer, as GPT code that
    builds its layers in a loop uses them; float() and double() cast the floating tensors."""
    def built(lib):
        lnn = lib.nn
        lib.manual_seed(0)
        model = lnn.Module()
        for i in range(2):
            model.add_module(f"layer{i}", lnn.Linear(2, 2))
        model.register_parameter("scale", lnn.Parameter(lib.ones(2)))
        model.register_parameter("shift", None)
        model.layer0.register_buffer("steps", lib.zeros(1, dtype=lib.int64))
        errors = []
        for call in (lambda: model.register_parameter("layer0", lnn.Parameter(lib.ones(1))),
                     lambda: model.add_module("scale", lnn.ReLU()),
                     lambda: model.register_parameter("bad", lib.ones(1)),
                     lambda: model.get_submodule("layer0.nothing"),
                     lambda: model.get_parameter("layer0.steps")):
            try:
                call()
            except (KeyError, TypeError, AttributeError) as error:
                errors.append(type(error).__name__)
        model.double()
        return ([n for n, _ in model.named_parameters()], type(model.get_submodule("layer1")).__name__,
                model.get_parameter("layer1.bias").shape == (2,), str(model.get_buffer("layer0.steps").dtype)[-5:],
                str(model.layer0.weight.dtype)[-7:], errors)
    assert built(tw) == built(torch)


def test_a_slot_registered_empty_keeps_its_place_and_its_kind_as_torchs():
    """register_parameter(name, None) and add_module(name, None) reserve the name: what is set
    there later keeps that place, and a value of another kind is refused; nn.Linear(bias=False)'s
    bias is such a slot."""
    def built(lib):
        lnn = lib.nn
        model = lnn.Module()
        model.register_parameter("a", None)
        model.add_module("x", None)
        model.b = lnn.Parameter(lib.ones(1))
        model.y = lnn.ReLU()
        model.a = lnn.Parameter(lib.ones(1))
        model.x = lnn.Tanh()
        refused = []
        for slot, value in (("a", lib.ones(2)), ("x", 5)):
            try:
                setattr(model, slot, value)
            except TypeError:
                refused.append(slot)
        linear = lnn.Linear(2, 3, bias=False)
        try:
            linear.bias = lib.zeros(3)
        except TypeError:
            refused.append("bias")
        return [n for n, _ in model.named_parameters()], [n for n, _ in model.named_children()], refused
    assert built(tw) == built(torch)


def test_container_edges_as_torchs():
    """insert's range and return, a subclass's slice, a ModuleDict updated from another, pop of a
    slice, a key that would hide the module's own attribute, and dotted paths through a property."""
    def edges(lib):
        lnn = lib.nn

        class Layers(lnn.Sequential):
            pass
        seq = Layers(lnn.ReLU(), lnn.Tanh(), lnn.ReLU())
        results = [seq.insert(0, lnn.Tanh()) is seq, type(seq[1:]).__name__]
        try:
            seq.insert(9, lnn.ReLU())
        except IndexError:
            results.append("IndexError")
        results.append([type(m).__name__ for m in seq.pop(slice(0, 2))])
        modules = lnn.ModuleDict({"a": lnn.ReLU()})
        modules.update(lnn.ModuleDict({"b": lnn.Tanh()}))
        results.append(list(modules.keys()))
        try:
            lnn.ModuleDict({"training": lnn.ReLU()})
        except KeyError:
            results.append("KeyError")

        class WithProperty(lnn.Module):
            def __init__(self):
                super().__init__()
                self.inner = lnn.Linear(2, 2)
                self.register_buffer("steps", None)
                self.register_buffer("pe", lnn.Parameter(lib.ones(2)))

            @property
            def alias(self):
                return self.inner
        model = WithProperty()
        results += [model.get_submodule("alias") is model.inner, model.get_parameter("alias.bias").shape == (2,),
                    model.get_buffer("steps") is None, model.get_parameter("pe").shape == (2,)]
        try:
            lib.set_grad_enabled(lambda: None)
        except TypeError:
            results.append("TypeError")
        return results
    assert edges(tw) == edges(torch)


# --- gradients, state and moving -----------------------------------------------------------------------

def test_zero_grad_and_requires_grad_():
    model = nn.Linear(3, 2)
    model(tw.ones(4, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    model.zero_grad(set_to_none=False)  # zeroed in place, as torch's: code holding p.grad sees the zeros
    assert all(p.grad is g and np.all(g.numpy() == 0) for p, g in zip(model.parameters(), grads))
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.requires_grad_(False) is model and not any(p.requires_grad for p in model.parameters())


def test_state_dict_round_trip_and_strict_loading():
    a, b = a_model(tw), a_model(tw)
    for p in b.parameters():
        p.data *= 2
    result = a.load_state_dict(b.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert_same_tensors(a.named_parameters(), b.named_parameters(), "loaded")
    torch_state = a_model(torch).state_dict()  # torch's tensors load too
    a.load_state_dict(torch_state)
    assert_same_tensors(a.state_dict().items(), torch_state.items(), "from torch", rtol=1e-6, atol=1e-7)
    with pytest.raises(RuntimeError, match="missing keys"):
        a.load_state_dict({"head.weight": torch_state["head.weight"]})
    assert a.load_state_dict({"head.bias": torch_state["head.bias"]}, strict=False).unexpected_keys == []
    with pytest.raises(RuntimeError, match="size mismatch"):
        a.load_state_dict({**torch_state, "head.bias": np.zeros(3)})


def test_to_casts_floating_tensors_only():
    model = a_model(tw).to(tw.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.named["norm"].num_batches_tracked.dtype == np.int64  # a count stays an integer
    assert model.to("cpu") is model


def test_a_parameter_is_a_leaf_and_what_ops_make_of_it_is_a_tensor():
    w = nn.Parameter(tw.ones(2, 3))
    assert w.requires_grad and w.is_leaf and repr(w).startswith("Parameter containing:\ntensor(")
    assert type(w.T) is tw.Tensor and type(w * 2) is tw.Tensor
    with pytest.raises(TypeError, match="wraps a tensor"):
        nn.Parameter(np.ones(3))


# --- torch's layers: outputs and gradients -----------------------------------------------------------

def twin_layers(build):
    """The same layer in both libraries, with the same parameters (the test's dtype, on device)."""
    tw.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = build(tw), build(torch)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


LAYERS = {
    "Linear": (lambda lib: lib.nn.Linear(5, 3), (4, 5)),
    "Linear (B, T, C), no bias": (lambda lib: lib.nn.Linear(5, 3, bias=False), (2, 4, 5)),
    "LayerNorm": (lambda lib: lib.nn.LayerNorm(6), (2, 3, 6)),
    "BatchNorm1d (N, C)": (lambda lib: lib.nn.BatchNorm1d(4), (6, 4)),
    "BatchNorm1d (N, C, L)": (lambda lib: lib.nn.BatchNorm1d(3), (4, 3, 5)),
    "GELU": (lambda lib: lib.nn.GELU(), (3, 4)),
    "ReLU": (lambda lib: lib.nn.ReLU(), (3, 4)),
    "Tanh": (lambda lib: lib.nn.Tanh(), (3, 4)),
}


@pytest.mark.parametrize("build, x_shape", LAYERS.values(), ids=LAYERS.keys())
def test_layer_against_torch(check, build, x_shape):
    ours, theirs = twin_layers(build)
    ours.to(check.device, check.dtype)
    theirs.to(check.torch_dtype)
    check(ours, theirs, check.normal(*x_shape))
    ours_params, torch_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(ours_params) == list(torch_params)
    for name, p in ours_params.items():
        check.assert_close(p.grad, torch_params[name].grad, f"gradient of {name}")
    ours_buffers, torch_buffers = dict(ours.named_buffers()), dict(theirs.named_buffers())
    assert list(ours_buffers) == list(torch_buffers)
    for name, b in ours_buffers.items():
        check.assert_close(b, torch_buffers[name], f"buffer {name} after a training step")


def trained_batch_norms(check, batches, **options):
    """BatchNorm1d(3, **options) in both libraries after `batches` training batches, the same ones."""
    ours, theirs = twin_layers(lambda lib: lib.nn.BatchNorm1d(3, **options))
    ours.to(check.device, check.dtype)
    theirs.to(check.torch_dtype)
    for _ in range(batches):
        x = check.normal(5, 3)
        ours(tw.tensor(x, dtype=check.dtype, device=check.device))
        theirs(torch.tensor(x, dtype=check.torch_dtype))
    return ours, theirs


def test_batch_norm_in_eval_uses_the_running_statistics(check):
    ours, theirs = trained_batch_norms(check, 2)
    ours.eval()
    theirs.eval()
    check(ours, theirs, check.normal(4, 3))


def test_batch_norm_with_momentum_none_keeps_torchs_cumulative_average(check):
    """momentum=None: the running statistics are the plain mean over the batches seen so far."""
    ours, theirs = trained_batch_norms(check, 3, momentum=None)
    for name in ("running_mean", "running_var"):
        check.assert_close(getattr(ours, name), getattr(theirs, name), name)
    untracked = (nn.BatchNorm1d(3, track_running_stats=False), torch.nn.BatchNorm1d(3, track_running_stats=False))
    assert all(m.running_mean is m.running_var is m.num_batches_tracked is None for m in untracked)


def test_batch_norm_refuses_one_value_per_channel_in_training():
    for lib in (tw, torch):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            lib.nn.BatchNorm1d(3)(lib.ones(1, 3))
    assert nn.BatchNorm1d(3).eval()(tw.ones(1, 3)).shape == (1, 3)


def test_embedding_against_torch(check):
    ours, theirs = twin_layers(lambda lib: lib.nn.Embedding(7, 3))
    ours.to(check.device, check.dtype)
    theirs.to(check.torch_dtype)
    ids = check.rng.integers(0, 7, size=(4, 5))
    out, ref = ours(tw.tensor(ids, device=check.device)), theirs(torch.tensor(ids))
    check.assert_close(out, ref, "rows")
    check.backward_both(out, ref)
    check.assert_close(ours.weight.grad, theirs.weight.grad, "gradient of the table (repeated ids add)")


def test_dropout_layer_follows_the_mode():
    layer, x = nn.Dropout(0.5), tw.ones(200)
    tw.manual_seed(0)
    kept = layer(x).numpy()
    assert set(np.unique(kept)) == {0.0, 2.0}  # zeroed or scaled by 1 / (1 - p)
    assert np.all(layer.eval()(x).numpy() == 1)


def test_eval_and_train_inside_a_captured_function_are_replayed():
    """The jit learns of a mode switched inside the function (train() tells it) and sets it again
    on every replay; a mode switched outside, between calls, is still caught."""
    tw.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.LayerNorm(4))
    x = tw.tensor(np.arange(6.0).reshape(2, 3), dtype=tw.float32)

    def evaluate(x):
        model.eval()  # no dropout mask is drawn: a capture could not replay one
        out = model(x)
        model.train()
        return out
    captured = jit.capture(evaluate)
    outputs = [captured(x).numpy() for _ in range(4)]
    assert captured.replayed == 2 and model.training
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])

    layer = nn.Linear(3, 2)
    forward = jit.capture(lambda x: layer(x))
    forward(x), forward(x)
    layer.eval()
    with pytest.raises(jit.CaptureError, match="mode changed"):
        forward(x)
