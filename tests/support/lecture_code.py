"""Code in the style of the makemore lectures (parts 1-5), written against whatever module
is passed in as `torch` (and `F` as torch.nn.functional): test_lectures.py runs every
function here once on PyTorch and once on tinygrad_wave, with nothing else changed --
the import switch a learner makes.

Not the notebooks' cells: the same patterns (the same calls, the same Python idioms, the
same in-place updates, the same random streams) on less data and fewer steps. Each
function reports what it would print through `say` and returns the numbers to compare.
"""
import random

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def vocabulary(words):
    chars = sorted(list(set("".join(words))))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}
    return stoi, itos


def build_dataset(torch, words, stoi, block_size):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def splits(torch, words, block_size):
    words = list(words)
    random.seed(42)
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    stoi, itos = vocabulary(words)
    return (build_dataset(torch, words[:n1], stoi, block_size), build_dataset(torch, words[n1:n2], stoi, block_size),
            stoi, itos)


def sample_names(torch, probs_of, g, count=5):
    """makemore's sampling loop: draw the next character until '.'; `probs_of(ix)` (or of a context)."""
    names = []
    for _ in range(count):
        out, ix = [], 0
        while True:
            p = probs_of(ix)
            ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
            out.append(ix)
            if ix == 0:
                break
        names.append(out)
    return names


def sgd_step(parameters, loss, i, steps, lossi, say):
    """Parts 3 and 5's update, as the lectures write it inside their loops: backward, SGD
    through .data with the step decay at half way, the progress line and log10 of the loss."""
    for p in parameters:
        p.grad = None
    loss.backward()
    lr = 0.1 if i < steps // 2 else 0.01
    for p in parameters:
        p.data += -lr * p.grad
    if i % 50 == 0:
        say(f"{i:7d}/{steps:7d}: {loss.item():.4f}")
    lossi.append(loss.log10().item())


# --- part 1: bigrams, counted and learned ------------------------------------------------------

def part1_counts(torch, F, words, say):
    stoi, itos = vocabulary(words)
    N = torch.zeros((27, 27), dtype=torch.int32)
    for w in words:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            N[stoi[ch1], stoi[ch2]] += 1
    plt.figure(figsize=(4, 4))
    plt.imshow(N, cmap="Blues")
    for i in range(3):
        plt.text(0, i, N[i, 0].item(), ha="center", va="top", color="gray")
    plt.close("all")

    p = N[0].float()
    p = p / p.sum()
    g = torch.Generator().manual_seed(2147483647)
    first = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
    g = torch.Generator().manual_seed(2147483647)
    q = torch.rand(3, generator=g)
    q = q / q.sum()
    hundred = torch.multinomial(q, num_samples=100, replacement=True, generator=g)

    P = (N + 1).float()
    P /= P.sum(1, keepdims=True)
    g = torch.Generator().manual_seed(2147483647)
    names = ["".join(itos[i] for i in name) for name in sample_names(torch, lambda ix: P[ix], g)]
    for name in names:
        say(name)

    log_likelihood, n = 0.0, 0
    for w in words[:200]:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            prob = P[stoi[ch1], stoi[ch2]]
            logprob = torch.log(prob)
            log_likelihood += logprob
            n += 1
    say(f"{log_likelihood=}")
    nll = -log_likelihood
    say(f"{nll/n}")
    return dict(N=N.tolist(), first=first, q=q.tolist(), hundred=hundred.tolist(), names=names,
                nll=(nll / n).item())


def part1_network(torch, F, words, say):
    stoi, itos = vocabulary(words)
    xs, ys = [], []
    for w in words:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            xs.append(stoi[ch1])
            ys.append(stoi[ch2])
    xs, ys = torch.tensor(xs), torch.tensor(ys)
    num = xs.nelement()

    g = torch.Generator().manual_seed(2147483647)
    W = torch.randn((27, 27), generator=g, requires_grad=True)
    losses = []
    for k in range(5):
        xenc = F.one_hot(xs, num_classes=27).float()
        logits = xenc @ W
        counts = logits.exp()
        probs = counts / counts.sum(1, keepdims=True)
        loss = -probs[torch.arange(num), ys].log().mean() + 0.01 * (W ** 2).mean()
        say(loss.item())
        losses.append(loss.item())
        W.grad = None
        loss.backward()
        W.data += -50 * W.grad

    nlls = torch.zeros(5)
    for i in range(5):
        x, y = xs[i].item(), ys[i].item()
        p = probs[i, y]
        logp = torch.log(p)
        nll = -logp
        nlls[i] = nll  # nll is in the graph: nlls becomes part of it
    say(f"average negative log likelihood, i.e. loss = {nlls.mean().item()}")

    g = torch.Generator().manual_seed(2147483647)

    def probs_of(ix):
        xenc = F.one_hot(torch.tensor([ix]), num_classes=27).float()
        counts = (xenc @ W).exp()
        return counts / counts.sum(1, keepdims=True)
    names = sample_names(torch, probs_of, g)
    return dict(losses=losses, W=W.tolist(), names=names, nlls=nlls.tolist())


# --- part 2: the MLP ------------------------------------------------------------------------

def part2_mlp(torch, F, words, say, steps=300):
    (Xtr, Ytr), (Xdev, Ydev), stoi, itos = splits(torch, words, block_size=3)
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g)
    b1 = torch.randn(200, generator=g)
    W2 = torch.randn((200, 27), generator=g)
    b2 = torch.randn(27, generator=g)
    parameters = [C, W1, b1, W2, b2]
    say(sum(p.nelement() for p in parameters))
    for p in parameters:
        p.requires_grad = True

    lre = torch.linspace(-3, 0, steps)
    lrs = 10**lre
    torch.manual_seed(42)
    lri, lossi, stepi = [], [], []
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,))
        emb = C[Xtr[ix]]
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = lrs[i] if i < steps // 2 else 0.1
        for p in parameters:
            p.data += -lr * p.grad
        lri.append(lre[i].item())
        stepi.append(i)
        lossi.append(loss.log10().item())
    plt.plot(stepi, lossi)
    plt.scatter(C[:, 0].data, C[:, 1].data, s=20)
    for i in range(3):
        plt.text(C[i, 0].item(), C[i, 1].item(), itos[i])
    plt.close("all")

    emb = C[Xdev]
    h = torch.tanh(emb.view(-1, 30) @ W1 + b1)
    dev = F.cross_entropy(h @ W2 + b2, Ydev)
    say(dev)

    g = torch.Generator().manual_seed(2147483647 + 10)
    names = []
    for _ in range(5):
        out, context = [], [0] * 3
        while True:
            emb = C[torch.tensor([context])]
            h = torch.tanh(emb.view(1, -1) @ W1 + b1)
            probs = F.softmax(h @ W2 + b2, dim=1)
            ix = torch.multinomial(probs, num_samples=1, generator=g).item()
            context = context[1:] + [ix]
            out.append(ix)
            if ix == 0:
                break
        names.append("".join(itos[i] for i in out))
    return dict(lossi=lossi, dev=dev.item(), names=names, lri=lri)


# --- part 3: batch norm, by hand and as classes -----------------------------------------------

def part3_manual_batchnorm(torch, F, words, say, steps=200):
    (Xtr, Ytr), (Xdev, Ydev), stoi, itos = splits(torch, words, block_size=3)
    n_embd, n_hidden, block_size = 10, 200, 3
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, n_embd), generator=g)
    W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5 / 3) / ((n_embd * block_size) ** 0.5)
    W2 = torch.randn((n_hidden, 27), generator=g) * 0.01
    b2 = torch.randn(27, generator=g) * 0
    bngain, bnbias = torch.ones((1, n_hidden)), torch.zeros((1, n_hidden))
    bnmean_running, bnstd_running = torch.zeros((1, n_hidden)), torch.ones((1, n_hidden))
    parameters = [C, W1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True
    lossi = []
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
        Xb, Yb = Xtr[ix], Ytr[ix]
        emb = C[Xb]
        embcat = emb.view(emb.shape[0], -1)
        hpreact = embcat @ W1
        bnmeani = hpreact.mean(0, keepdim=True)
        bnstdi = hpreact.std(0, keepdim=True)
        hpreact = bngain * (hpreact - bnmeani) / bnstdi + bnbias
        with torch.no_grad():
            bnmean_running = 0.999 * bnmean_running + 0.001 * bnmeani
            bnstd_running = 0.999 * bnstd_running + 0.001 * bnstdi
        h = torch.tanh(hpreact)
        loss = F.cross_entropy(h @ W2 + b2, Yb)
        sgd_step(parameters, loss, i, steps, lossi, say)

    @torch.no_grad()
    def split_loss(x, y):
        emb = C[x]
        hpreact = emb.view(emb.shape[0], -1) @ W1
        hpreact = bngain * (hpreact - bnmean_running) / bnstd_running + bnbias
        return F.cross_entropy(torch.tanh(hpreact) @ W2 + b2, y).item()
    return dict(lossi=lossi, train=split_loss(Xtr, Ytr), val=split_loss(Xdev, Ydev))


class Linear:
    def __init__(self, torch, fan_in, fan_out, bias=True, generator=None):
        self.weight = torch.randn((fan_in, fan_out), generator=generator) / fan_in ** 0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class BatchNorm1d:
    def __init__(self, torch, dim, eps=1e-5, momentum=0.1):
        self.torch, self.eps, self.momentum, self.training = torch, eps, momentum, True
        self.gamma, self.beta = torch.ones(dim), torch.zeros(dim)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def __call__(self, x):
        torch = self.torch
        if self.training:
            dim = 0 if x.ndim == 2 else (0, 1)
            xmean = x.mean(dim, keepdim=True)
            xvar = x.var(dim, keepdim=True)
        else:
            xmean, xvar = self.running_mean, self.running_var
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        if self.training:
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * xmean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * xvar
        return self.out

    def parameters(self):
        return [self.gamma, self.beta]


class Tanh:
    def __init__(self, torch):
        self.torch = torch

    def __call__(self, x):
        self.out = self.torch.tanh(x)
        return self.out

    def parameters(self):
        return []


def part3_classes(torch, F, words, say, steps=100):
    (Xtr, Ytr), _, stoi, itos = splits(torch, words, block_size=3)
    n_embd, n_hidden, g = 10, 100, torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, n_embd), generator=g)
    layers = [Linear(torch, n_embd * 3, n_hidden, bias=False, generator=g), BatchNorm1d(torch, n_hidden), Tanh(torch),
              Linear(torch, n_hidden, n_hidden, generator=g), BatchNorm1d(torch, n_hidden), Tanh(torch),
              Linear(torch, n_hidden, 27, bias=False, generator=g), BatchNorm1d(torch, 27)]
    with torch.no_grad():
        layers[-1].gamma *= 0.1
        for layer in layers[:-1]:
            if isinstance(layer, Linear):
                layer.weight *= 5 / 3
    parameters = [C] + [p for layer in layers for p in layer.parameters()]
    say(sum(p.nelement() for p in parameters))
    for p in parameters:
        p.requires_grad = True

    lossi, ud = [], []
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,), generator=g)
        Xb, Yb = Xtr[ix], Ytr[ix]
        emb = C[Xb]
        x = emb.view(emb.shape[0], -1)
        for layer in layers:
            x = layer(x)
        loss = F.cross_entropy(x, Yb)
        for layer in layers:
            layer.out.retain_grad()
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1
        for p in parameters:
            p.data += -lr * p.grad
        lossi.append(loss.log10().item())
        with torch.no_grad():
            ud.append([((lr * p.grad).std() / p.data.std()).log10().item() for p in parameters])

    stats = []
    plt.figure(figsize=(8, 2))
    for i, layer in enumerate(layers[:-1]):
        if isinstance(layer, Tanh):
            t = layer.out
            say("layer %d (%10s): mean %+.2f, std %.2f, saturated: %.2f%%" % (
                i, layer.__class__.__name__, t.mean(), t.std(), (t.abs() > 0.97).float().mean() * 100))
            hy, hx = torch.histogram(t, density=True)
            plt.plot(hx[:-1].detach(), hy.detach())
            g_out = layer.out.grad
            say("layer %d (%10s): mean %+f, std %e" % (i, layer.__class__.__name__, g_out.mean(), g_out.std()))
            stats.append([t.mean().item(), t.std().item(), g_out.std().item()])
    for i, p in enumerate(parameters):
        if p.ndim == 2:
            t = p.grad
            say("weight %10s | mean %+f | std %e | grad:data ratio %e" % (
                tuple(p.shape), t.mean(), t.std(), t.std() / p.std()))
    plt.plot([ud[j][1] for j in range(len(ud))])
    plt.close("all")
    for layer in layers:
        layer.training = False
    return dict(lossi=lossi, ud=ud, stats=stats)


# --- part 4: backprop by hand ---------------------------------------------------------------

def cmp(torch, s, dt, t):
    ex = torch.all(dt == t.grad).item()
    app = torch.allclose(dt, t.grad)
    maxdiff = (dt - t.grad).abs().max().item()
    return f"{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s}", maxdiff


def part4_parameters(torch, n_embd, n_hidden):
    """Part 4's initialisation: small random values everywhere, none zero, so no gradient hides."""
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, n_embd), generator=g)
    W1 = torch.randn((n_embd * 3, n_hidden), generator=g) * (5 / 3) / ((n_embd * 3) ** 0.5)
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, 27), generator=g) * 0.1
    b2 = torch.randn(27, generator=g) * 0.1
    bngain = torch.randn((1, n_hidden)) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden)) * 0.1
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    for p in parameters:
        p.requires_grad = True
    return g, parameters


def first_layer_backward(torch, dhprebn, W1, embcat, emb, C, Xb):
    """Part 4's last lines: through the first Linear, the view, and the embedding row by row."""
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C)
    for k in range(Xb.shape[0]):
        for j in range(Xb.shape[1]):
            ix = Xb[k, j]
            dC[ix] += demb[k, j]
    return dembcat, dW1, db1, demb, dC


def part4_backprop(torch, F, words, say):
    (Xtr, Ytr), _, stoi, itos = splits(torch, words, block_size=3)
    n_embd, n_hidden, n = 10, 64, 32
    g, parameters = part4_parameters(torch, n_embd, n_hidden)
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    ix = torch.randint(0, Xtr.shape[0], (n,), generator=g)
    Xb, Yb = Xtr[ix], Ytr[ix]

    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    for p in parameters:
        p.grad = None
    for t in [logprobs, probs, counts, counts_sum, counts_sum_inv, norm_logits, logit_maxes, logits, h, hpreact,
              bnraw, bnvar_inv, bnvar, bndiff2, bndiff, hprebn, bnmeani, embcat, emb]:
        t.retain_grad()
    loss.backward()

    # exercise 1, outside no_grad as in the lecture: the manual gradients are tensors in the graph
    dlogprobs = torch.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
    dcounts += torch.ones_like(counts) * dcounts_sum
    dnorm_logits = counts * dcounts
    dlogits = dnorm_logits.clone()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
    dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.clone()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)
    dembcat, dW1, db1, demb, dC = first_layer_backward(torch, dhprebn, W1, embcat, emb, C, Xb)
    rows = [cmp(torch, name, d, t) for name, d, t in [
        ("logprobs", dlogprobs, logprobs), ("probs", dprobs, probs), ("counts_sum_inv", dcounts_sum_inv, counts_sum_inv),
        ("counts_sum", dcounts_sum, counts_sum), ("counts", dcounts, counts), ("norm_logits", dnorm_logits, norm_logits),
        ("logit_maxes", dlogit_maxes, logit_maxes), ("logits", dlogits, logits), ("h", dh, h), ("W2", dW2, W2),
        ("b2", db2, b2), ("hpreact", dhpreact, hpreact), ("bngain", dbngain, bngain), ("bnbias", dbnbias, bnbias),
        ("bnraw", dbnraw, bnraw), ("bnvar_inv", dbnvar_inv, bnvar_inv), ("bnvar", dbnvar, bnvar),
        ("bndiff2", dbndiff2, bndiff2), ("bndiff", dbndiff, bndiff), ("bnmeani", dbnmeani, bnmeani),
        ("hprebn", dhprebn, hprebn), ("embcat", dembcat, embcat), ("W1", dW1, W1), ("b1", db1, b1), ("emb", demb, emb),
        ("C", dC, C)]]

    # exercises 2 and 3: the fused formulas
    loss_fast = F.cross_entropy(logits, Yb)
    say(f"{loss_fast.item()} diff: {(loss_fast - loss).item()}")
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    rows.append(cmp(torch, "logits", dlogits, logits))
    hpreact_fast = bngain * (hprebn - hprebn.mean(0, keepdim=True)) / torch.sqrt(
        hprebn.var(0, keepdim=True, unbiased=True) + 1e-5) + bnbias
    say(f"max diff: {(hpreact_fast - hpreact).abs().max()}")
    dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    rows.append(cmp(torch, "hprebn", dhprebn, hprebn))
    for row, maxdiff in rows:
        say(row)
    return dict(rows=rows, loss=loss.item())


def part4_training_by_hand(torch, F, words, say, steps=100):
    (Xtr, Ytr), (Xdev, Ydev), stoi, itos = splits(torch, words, block_size=3)
    n_embd, n_hidden, n = 10, 200, 32
    g, parameters = part4_parameters(torch, n_embd, n_hidden)
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    lossi = []
    with torch.no_grad():
        for i in range(steps):
            ix = torch.randint(0, Xtr.shape[0], (n,), generator=g)
            Xb, Yb = Xtr[ix], Ytr[ix]
            emb = C[Xb]
            embcat = emb.view(emb.shape[0], -1)
            hprebn = embcat @ W1 + b1
            bnmean = hprebn.mean(0, keepdim=True)
            bnvar = hprebn.var(0, keepdim=True, unbiased=True)
            bnvar_inv = (bnvar + 1e-5)**-0.5
            bnraw = (hprebn - bnmean) * bnvar_inv
            hpreact = bngain * bnraw + bnbias
            h = torch.tanh(hpreact)
            logits = h @ W2 + b2
            loss = F.cross_entropy(logits, Yb)
            for p in parameters:
                p.grad = None
            dlogits = F.softmax(logits, 1)
            dlogits[range(n), Yb] -= 1
            dlogits /= n
            dh = dlogits @ W2.T
            dW2 = h.T @ dlogits
            db2 = dlogits.sum(0)
            dhpreact = (1.0 - h**2) * dh
            dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
            dbnbias = dhpreact.sum(0, keepdim=True)
            dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                                - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
            dembcat, dW1, db1, demb, dC = first_layer_backward(torch, dhprebn, W1, embcat, emb, C, Xb)
            grads = [dC, dW1, db1, dW2, db2, dbngain, dbnbias]
            lr = 0.1 if i < steps // 2 else 0.01
            for p, grad in zip(parameters, grads):
                p.data += -lr * grad
            if i % 50 == 0:
                say(f"{i:7d}/{steps:7d}: {loss.item():.4f}")
            lossi.append(loss.log10().item())
    plt.imshow(dlogits.detach(), cmap="gray")
    plt.close("all")
    return dict(lossi=lossi)


# --- part 5: the hierarchical model ------------------------------------------------------------

class Embedding:
    def __init__(self, torch, num_embeddings, embedding_dim):
        self.weight = torch.randn((num_embeddings, embedding_dim))

    def __call__(self, IX):
        self.out = self.weight[IX]
        return self.out

    def parameters(self):
        return [self.weight]


class FlattenConsecutive:
    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out

    def parameters(self):
        return []


class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def part5_wavenet(torch, F, words, say, steps=100):
    (Xtr, Ytr), (Xdev, Ydev), stoi, itos = splits(torch, words, block_size=8)
    for x, y in zip(Xtr[:3], Ytr[:3]):
        say("".join(itos[ix.item()] for ix in x) + " --> " + itos[y.item()])
    torch.manual_seed(42)
    n_embd, n_hidden = 24, 128
    model = Sequential([
        Embedding(torch, 27, n_embd),
        FlattenConsecutive(2), Linear(torch, n_embd * 2, n_hidden, bias=False), BatchNorm1d(torch, n_hidden), Tanh(torch),
        FlattenConsecutive(2), Linear(torch, n_hidden * 2, n_hidden, bias=False), BatchNorm1d(torch, n_hidden),
        Tanh(torch),
        FlattenConsecutive(2), Linear(torch, n_hidden * 2, n_hidden, bias=False), BatchNorm1d(torch, n_hidden),
        Tanh(torch),
        Linear(torch, n_hidden, 27),
    ])
    with torch.no_grad():
        model.layers[-1].weight *= 0.1
    parameters = model.parameters()
    say(sum(p.nelement() for p in parameters))
    for p in parameters:
        p.requires_grad = True
    lossi = []
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,))
        Xb, Yb = Xtr[ix], Ytr[ix]
        logits = model(Xb)
        loss = F.cross_entropy(logits, Yb)
        sgd_step(parameters, loss, i, steps, lossi, say)
    plt.plot(torch.tensor(lossi).view(-1, 10).mean(1))
    plt.close("all")
    shapes = [tuple(layer.out.shape) for layer in model.layers]
    for layer in model.layers:
        layer.training = False

    @torch.no_grad()
    def split_loss(x, y):
        return F.cross_entropy(model(x), y).item()
    names = []
    for _ in range(5):
        out, context = [], [0] * 8
        while True:
            probs = F.softmax(model(torch.tensor([context])), dim=1)
            ix = torch.multinomial(probs, num_samples=1).item()
            context = context[1:] + [ix]
            out.append(ix)
            if ix == 0:
                break
        names.append("".join(itos[i] for i in out))
    return dict(lossi=lossi, shapes=shapes, train=split_loss(Xtr[:5000], Ytr[:5000]), val=split_loss(Xdev, Ydev),
                names=names)
