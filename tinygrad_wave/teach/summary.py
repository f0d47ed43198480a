"""teach.summary: every layer of a model, its output shape and its parameters,
in one table, as torchinfo's and Keras's `summary` print it."""
from ..autograd import no_grad


def _layers(model):
    """(position, layer) for every layer of a Sequential, nested ones opened up
    ("2.0", "2.1", ...); a model without layers is one row."""
    if not hasattr(model, "layers"):
        return [("", model)]
    found = []
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "layers"):
            found += [(f"{i}.{inner_name}", inner) for inner_name, inner in _layers(layer)]
        else:
            found.append((str(i), layer))
    return found


def summary(model, x):
    """Run `x` through `model` once, in eval mode and without recording a graph
    (nothing trains, batch norm's running statistics stay as they are), and
    return a table of each layer's output shape and parameter count, then the totals."""
    modules = [m for _, m in model.named_modules()]
    # as the model was: training flags, and each layer's last output (which part 3's diagnostics read)
    saved = [(m.training, vars(m).get("out")) for m in modules]
    model.eval()
    rows = []
    try:
        with no_grad():
            out = x  # as the model takes it: an index array, or a Tensor
            for name, layer in _layers(model):
                out = layer(out)
                rows.append((name, type(layer).__name__, str(tuple(out.shape)),
                             sum(p.numel() for p in layer.parameters())))
    finally:
        for m, (training, out) in zip(modules, saved):
            m.training = training
            if out is None:
                vars(m).pop("out", None)
            else:
                m.out = out
    return _table(rows, params=sum(p.numel() for p in model.parameters()),
                  buffers=sum(b.numel() for b in model.buffers()))


def _table(rows, params, buffers):
    name_w, kind_w, shape_w = (max(len(row[k]) for row in rows + [("", "Layer (type)", "Output shape", 0)])
                               for k in range(3))
    header = f"{'':{name_w}}  {'Layer (type)':{kind_w}}  {'Output shape':{shape_w}}  {'Param #':>10}"
    rule = "=" * len(header)
    lines = [header, rule]
    lines += [f"{name:>{name_w}}  {kind:{kind_w}}  {shape:{shape_w}}  {count:>10,}" for name, kind, shape, count in rows]
    lines += [rule, f"Total params: {params:,}",
              f"Buffers (batch-norm running statistics, not trained): {buffers:,}"]
    return "\n".join(lines)
