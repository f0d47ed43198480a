"""The four models of makemore part 5's performance log, and two WaveNets, as presets.

    mlp3     3 characters of context, flat MLP, n_embd 10, n_hidden 200   (12,097 params)
    flat8    8 characters, flat MLP, n_embd 10, n_hidden 200               (22,097 params)
    hier22k  8 characters, hierarchical (WaveNet-like), n_embd 10, n_hidden 68  (22,397 params)
    hier76k  the same, scaled up: n_embd 24, n_hidden 128                  (76,579 params)
    wavenet    receptive field 8 (like part 5): gated residual blocks with
               dilations 1, 2, 4, n_embd 40, n_hidden 80, dropout 0.2       (74,547 params)
    wavenet16  receptive field 16: dilations 1, 2, 4, 8, n_embd 36, n_hidden 70 (76,287 params)

The hierarchical model fuses two neighbours at a time: 8 -> 4 -> 2 -> 1.
That is a stack of causal convolutions with kernel 2 and dilations 1, 2, 4,
evaluated at the last position only; the WaveNet below evaluates it at every
position of a name at once (tests/lectures/test_wavenet.py shows the equivalence).
"""
from .makemore_layers import BatchNorm1d, Conv1d, Dropout, Embedding, FlattenConsecutive, Linear, Module, Sequential, Tanh

PRESETS = {
    "mlp3": dict(block_size=3, n_embd=10, n_hidden=200, hierarchical=False),
    "flat8": dict(block_size=8, n_embd=10, n_hidden=200, hierarchical=False),
    "hier22k": dict(block_size=8, n_embd=10, n_hidden=68, hierarchical=True),
    "hier76k": dict(block_size=8, n_embd=24, n_hidden=128, hierarchical=True),
    # block_size is the receptive field; each trains on whole names (training.py)
    "wavenet": dict(block_size=8, n_embd=40, n_hidden=80, hierarchical=False, wavenet=True, dropout=0.2),
    "wavenet16": dict(block_size=16, n_embd=36, n_hidden=70, hierarchical=False, wavenet=True, dropout=0.2),
}


def build_model(vocab_size, block_size, n_embd, n_hidden, hierarchical=True, wavenet=False, dropout=0.0):
    """makemore part 5's model, or with wavenet=True a WaveNet (dropout applies to it
    only). Draws its weights from the global generator: call manual_seed first for a
    reproducible model."""
    if wavenet:
        return WaveNet(vocab_size, block_size, n_embd, n_hidden, dropout)
    if hierarchical:
        levels = block_size.bit_length() - 1
        if block_size != 2 ** levels or levels == 0:
            raise ValueError(f"the hierarchical model needs a block size that is a power of 2, got {block_size}")
        layers = [Embedding(vocab_size, n_embd)]
        width = n_embd
        for _ in range(levels):
            layers += [FlattenConsecutive(2), Linear(2 * width, n_hidden, bias=False),
                       BatchNorm1d(n_hidden), Tanh()]
            width = n_hidden
    else:
        layers = [Embedding(vocab_size, n_embd), FlattenConsecutive(block_size),
                  Linear(n_embd * block_size, n_hidden, bias=False), BatchNorm1d(n_hidden), Tanh()]
    layers.append(Linear(n_hidden, vocab_size))
    model = Sequential(layers)
    model.layers[-1].weight.data *= 0.1  # a less confident start: initial loss near -log(1/27)
    return model


def parameter_count(vocab_size, block_size, n_embd, n_hidden, hierarchical=True, wavenet=False, dropout=0.0):
    """The number of parameters build_model would make, without making them: so
    that an absurd size can be refused before anything is allocated."""
    if wavenet:  # per block: filter and gate (K = 2), skip; a residual conv in all but the last
        levels = max(block_size.bit_length() - 1, 1)
        block = 2 * (2 * n_embd * n_hidden + n_hidden) + n_hidden * n_hidden + n_hidden
        head = n_hidden * n_hidden + n_hidden + n_hidden * vocab_size + vocab_size
        return vocab_size * n_embd + levels * block + (levels - 1) * (n_hidden * n_embd + n_embd) + head
    if hierarchical:  # each level's Linear takes two neighbours: 2 * n_embd wide, then 2 * n_hidden
        fan_ins = [2 * n_embd] + [2 * n_hidden] * (block_size.bit_length() - 2)
    else:
        fan_ins = [n_embd * block_size]
    levels = sum(fan_in * n_hidden + 2 * n_hidden for fan_in in fan_ins)  # weight, gamma, beta
    return vocab_size * n_embd + levels + n_hidden * vocab_size + vocab_size


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


class ResidualBlock(Module):
    """One WaveNet layer: a gated dilated convolution, z = tanh(W_f * x) sigmoid(W_g * x),
    then 1x1 convolutions of z into the residual stream (x + W_r z) and into the skip sum."""

    def __init__(self, channels, hidden, dilation, dropout, last):
        self.filter = Conv1d(channels, hidden, kernel_size=2, dilation=dilation)
        self.gate = Conv1d(channels, hidden, kernel_size=2, dilation=dilation)
        self.dropout = Dropout(dropout)
        # the last block's residual output would feed nothing: it has no residual convolution
        self.residual = None if last else Conv1d(hidden, channels, kernel_size=1)
        self.skip = Conv1d(hidden, hidden, kernel_size=1)

    def forward(self, x):
        z = self.dropout(self.filter(x).tanh() * self.gate(x).sigmoid())
        return (None if self.residual is None else x + self.residual(z)), self.skip(z)

    def __repr__(self):
        return _with_children(self)


class WaveNet(Module):
    """Character WaveNet (van den Oord et al. 2016) on (B, T) ids -> (B, T, vocab) logits:
    Embedding, residual blocks with dilations 1, 2, 4, ... up to the receptive field
    `block_size` (a power of 2), the sum of the blocks' skip outputs, ReLU, 1x1 conv,
    ReLU, 1x1 conv to the vocabulary. Position t sees ids t - block_size + 1 .. t.

    No normalisation layer: with residual connections the three or four blocks
    here train without it, and without it every position's output depends on
    its own receptive field only -- never on the other names in the batch or
    on the '.' prefixes between them -- so training on names packed end to
    end, evaluating on build_dataset's contexts and sampling one character at
    a time all compute the same function. (Batch norm over (0, 1) would mix
    the prefix positions, which predict nothing, into its statistics.)
    Regularisation is dropout on the gated activations."""

    def __init__(self, vocab_size, block_size, n_embd, n_hidden, dropout=0.0):
        levels = block_size.bit_length() - 1
        if block_size != 2 ** levels or levels == 0:
            raise ValueError(f"the WaveNet needs a receptive field (block size) that is a power of 2, got {block_size}")
        self.embedding = Embedding(vocab_size, n_embd)
        self.blocks = [ResidualBlock(n_embd, n_hidden, 2 ** i, dropout, last=i == levels - 1) for i in range(levels)]
        self.hidden = Conv1d(n_hidden, n_hidden, kernel_size=1)
        self.logits = Conv1d(n_hidden, vocab_size, kernel_size=1)
        self.logits.weight.data *= 0.1  # a less confident start, as in makemore

    def forward(self, idx):
        x, skips = self.embedding(idx), None
        for block in self.blocks:
            x, skip = block(x)
            skips = skip if skips is None else skips + skip
        return self.logits(self.hidden(skips.relu()).relu())

    def __repr__(self):
        return _with_children(self)


def _with_children(module):
    """torch's print(model): the module's name, then each layer below it, indented."""
    lines = []
    for name, child in vars(module).items():
        children = child if isinstance(child, list) else [child]
        for i, c in enumerate(children):
            if isinstance(c, Module):
                label = f"{name}.{i}" if isinstance(child, list) else name
                lines.append(f"\n  ({label}): " + repr(c).replace("\n", "\n  "))
    return f"{type(module).__name__}({''.join(lines)}\n)"


def as_convolutions(model):
    """A model of build_model rewritten as the causal convolutions it is.

    FlattenConsecutive(n) then Linear(n C, H) puts n neighbouring steps side
    by side and mixes them: that is a Conv1d(C, H, kernel_size=n) whose weight
    is the Linear's reshaped to (n, C, H) (the first C rows multiply the
    earliest step), with a dilation equal to the span of one step of its input:
    1 for the first level, then the product of the group sizes below (so 1, 2, 4
    for the hierarchical model; one kernel of block_size for the flat MLP).
    Batch norm, tanh, the embedding and the output layer are the model's own
    objects. On (B, T) ids the result gives logits at every position, and at
    position t they are the model's logits for the context ending at t -- in
    eval mode; in training, batch norm's statistics would cover every position.
    (Each Conv1d draws its initial weights from the global generator before
    they are replaced.)"""
    layers, group, span = [], None, 1
    for layer in model.layers:
        if isinstance(layer, FlattenConsecutive):
            group = layer.n
            continue
        if group is not None:  # the Linear right after a FlattenConsecutive
            fan_in, fan_out = layer.weight.shape
            conv = Conv1d(fan_in // group, fan_out, kernel_size=group, dilation=span, bias=layer.bias is not None)
            conv.weight.data = layer.weight.numpy().reshape(group, fan_in // group, fan_out)
            if layer.bias is not None:
                conv.bias.data = layer.bias.numpy()
            layer = conv.to(layer.weight.device, layer.weight.dtype)
            span, group = span * group, None
        layers.append(layer)
    return Sequential(layers)
