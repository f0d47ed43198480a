"""The four models of makemore part 5's performance log, as presets.

    mlp3     3 characters of context, flat MLP, n_embd 10, n_hidden 200   (12,097 params)
    flat8    8 characters, flat MLP, n_embd 10, n_hidden 200               (22,097 params)
    hier22k  8 characters, hierarchical (WaveNet-like), n_embd 10, n_hidden 68  (22,397 params)
    hier76k  the same, scaled up: n_embd 24, n_hidden 128                  (76,579 params)

The hierarchical model fuses two neighbours at a time: 8 -> 4 -> 2 -> 1.
"""
from . import nn

PRESETS = {
    "mlp3": dict(block_size=3, n_embd=10, n_hidden=200, hierarchical=False),
    "flat8": dict(block_size=8, n_embd=10, n_hidden=200, hierarchical=False),
    "hier22k": dict(block_size=8, n_embd=10, n_hidden=68, hierarchical=True),
    "hier76k": dict(block_size=8, n_embd=24, n_hidden=128, hierarchical=True),
}


def build_model(vocab_size, block_size, n_embd, n_hidden, hierarchical=True):
    """makemore part 5's model. Draws its weights from the global generator:
    call manual_seed first for a reproducible model."""
    if hierarchical:
        levels = block_size.bit_length() - 1
        if block_size != 2 ** levels or levels == 0:
            raise ValueError(f"the hierarchical model needs a block size that is a power of 2, got {block_size}")
        layers = [nn.Embedding(vocab_size, n_embd)]
        width = n_embd
        for _ in range(levels):
            layers += [nn.FlattenConsecutive(2), nn.Linear(2 * width, n_hidden, bias=False),
                       nn.BatchNorm1d(n_hidden), nn.Tanh()]
            width = n_hidden
    else:
        layers = [nn.Embedding(vocab_size, n_embd), nn.FlattenConsecutive(block_size),
                  nn.Linear(n_embd * block_size, n_hidden, bias=False), nn.BatchNorm1d(n_hidden), nn.Tanh()]
    layers.append(nn.Linear(n_hidden, vocab_size))
    model = nn.Sequential(layers)
    model.layers[-1].weight.data *= 0.1  # a less confident start: initial loss near -log(1/27)
    return model


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
