"""Code in the style of karpathy/makemore's makemore.py, written against whatever modules are
passed in as `torch`, `nn`, `F` and `data` (torch.utils.data): test_makemore.py runs it once on
PyTorch and once on tinygrad_wave, the import switch a learner makes and nothing else.

Not makemore.py itself: its six models (bigram, MLP, RNN, GRU, bag of words, Transformer) and
its training program rebuilt with the same calls -- a Dataset of names padded to the longest,
randperm's train/test split, an endless loader of RandomSampler(replacement=True), AdamW,
evaluation on shuffled DataLoaders under inference_mode, torch.save of the best state_dict,
top-k sampling -- at sizes that run in a second. The edits, the same for both libraries: the
imports, the data (the first names of names.txt), the sizes and step counts, no TensorBoard
and no command line.
"""
import math
from types import SimpleNamespace

TINY = dict(n_layer=2, n_head=2, n_embd=16, n_embd2=16)


# --- data ----------------------------------------------------------------------------------

def names_dataset(torch, data):
    """makemore's dataset class: each name as (x, y), x = <START> then the name's ids, y = the
    name's ids then <STOP> (0), padded to the longest name with y = -1 (no loss there)."""
    class Names(data.Dataset):
        def __init__(self, names, alphabet, longest):
            self.names, self.alphabet, self.longest = names, alphabet, longest
            self.char_to_id = {c: i + 1 for i, c in enumerate(alphabet)}
            self.id_to_char = {i: c for c, i in self.char_to_id.items()}

        def __len__(self):
            return len(self.names)

        def contains(self, name):
            return name in self.names

        def vocab_size(self):
            return len(self.alphabet) + 1  # the characters and the 0 that starts and ends a name

        def output_length(self):
            return self.longest + 1

        def decode(self, ids):
            return "".join(self.id_to_char[i] for i in ids)

        def __getitem__(self, i):
            ids = torch.tensor([self.char_to_id[c] for c in self.names[i]], dtype=torch.long)
            x = torch.zeros(self.longest + 1, dtype=torch.long)
            y = torch.zeros(self.longest + 1, dtype=torch.long)
            x[1:1 + len(ids)] = ids
            y[:len(ids)] = ids
            y[len(ids) + 1:] = -1
            return x, y
    return Names


def split_names(torch, data, names):
    """Shuffle with randperm and keep 10% (at most 1,000) as the test set, as makemore does."""
    alphabet, longest = sorted(set("".join(names))), max(len(n) for n in names)
    held_out = min(1000, int(len(names) * 0.1))
    order = torch.randperm(len(names)).tolist()
    Names = names_dataset(torch, data)
    train = Names([names[i] for i in order[:-held_out]], alphabet, longest)
    test = Names([names[i] for i in order[-held_out:]], alphabet, longest)
    return train, test


class EndlessBatches:
    """Batches forever: a DataLoader on a sampler of 1e10 draws with replacement, started again
    should it ever run out (makemore's InfiniteDataLoader)."""

    def __init__(self, data, dataset, **loader_args):
        sampler = data.RandomSampler(dataset, replacement=True, num_samples=int(1e10))
        self.loader = data.DataLoader(dataset, sampler=sampler, **loader_args)
        self.batches = iter(self.loader)

    def next(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)


# --- the six models ----------------------------------------------------------------------------

def model_classes(torch, nn, F):
    """makemore's models, each forward(idx, targets=None) -> (logits, loss)."""

    def loss_of(logits, targets):
        if targets is None:
            return None
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    class Bigram(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.logits = nn.Parameter(torch.zeros((cfg.vocab_size, cfg.vocab_size)))

        def get_block_size(self):
            return 1

        def forward(self, idx, targets=None):
            logits = self.logits[idx]
            return logits, loss_of(logits, targets)

    class MLP(nn.Module):
        """Bengio et al. 2003: the embeddings of the block_size previous characters side by side."""
        def __init__(self, cfg):
            super().__init__()
            self.block_size, self.vocab_size = cfg.block_size, cfg.vocab_size
            self.wte = nn.Embedding(cfg.vocab_size + 1, cfg.n_embd)  # + the <BLANK> before a name
            self.mlp = nn.Sequential(nn.Linear(cfg.block_size * cfg.n_embd, cfg.n_embd2), nn.Tanh(),
                                     nn.Linear(cfg.n_embd2, cfg.vocab_size))

        def get_block_size(self):
            return self.block_size

        def forward(self, idx, targets=None):
            previous = []
            for _ in range(self.block_size):
                previous.append(self.wte(idx))
                idx = torch.roll(idx, 1, 1)  # one character further back ...
                idx[:, 0] = self.vocab_size  # ... with <BLANK> where the name has none
            logits = self.mlp(torch.cat(previous, -1))
            return logits, loss_of(logits, targets)

    class RNNCell(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.xh_to_h = nn.Linear(cfg.n_embd + cfg.n_embd2, cfg.n_embd2)

        def forward(self, xt, hprev):
            return F.tanh(self.xh_to_h(torch.cat([xt, hprev], dim=1)))

    class GRUCell(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            width = cfg.n_embd + cfg.n_embd2
            self.xh_to_z = nn.Linear(width, cfg.n_embd2)
            self.xh_to_r = nn.Linear(width, cfg.n_embd2)
            self.xh_to_hbar = nn.Linear(width, cfg.n_embd2)

        def forward(self, xt, hprev):
            xh = torch.cat([xt, hprev], dim=1)
            reset = F.sigmoid(self.xh_to_r(xh))
            candidate = F.tanh(self.xh_to_hbar(torch.cat([xt, reset * hprev], dim=1)))
            update = F.sigmoid(self.xh_to_z(xh))
            return (1 - update) * hprev + update * candidate

    class RNN(nn.Module):
        def __init__(self, cfg, cell):
            super().__init__()
            self.block_size = cfg.block_size
            self.start = nn.Parameter(torch.zeros(1, cfg.n_embd2))
            self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.cell = {"rnn": RNNCell, "gru": GRUCell}[cell](cfg)
            self.lm_head = nn.Linear(cfg.n_embd2, cfg.vocab_size)

        def get_block_size(self):
            return self.block_size

        def forward(self, idx, targets=None):
            b, t = idx.size()
            emb = self.wte(idx)
            h = self.start.expand((b, -1))
            states = []
            for i in range(t):
                h = self.cell(emb[:, i, :], h)
                states.append(h)
            logits = self.lm_head(torch.stack(states, 1))
            return logits, loss_of(logits, targets)

    class CausalBoW(nn.Module):
        """Each position the plain average of itself and the positions before it."""
        def __init__(self, cfg):
            super().__init__()
            self.register_buffer("bias", torch.tril(torch.ones(cfg.block_size, cfg.block_size))
                                 .view(1, cfg.block_size, cfg.block_size))

        def forward(self, x):
            B, T, C = x.size()
            weights = torch.zeros((B, T, T), device=x.device).masked_fill(self.bias[:, :T, :T] == 0, float("-inf"))
            return F.softmax(weights, dim=-1) @ x

    class BoW(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.block_size = cfg.block_size
            self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
            self.cbow = CausalBoW(cfg)
            self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(cfg.n_embd, cfg.n_embd2),
                                          c_proj=nn.Linear(cfg.n_embd2, cfg.n_embd)))
            self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size)

        def get_block_size(self):
            return self.block_size

        def forward(self, idx, targets=None):
            t = idx.size(1)
            pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
            x = self.wte(idx) + self.wpe(pos)
            x = x + self.cbow(x)
            x = x + self.mlp.c_proj(F.tanh(self.mlp.c_fc(x)))
            logits = self.lm_head(x)
            return logits, loss_of(logits, targets)

    class NewGELU(nn.Module):
        """GPT-2's tanh approximation of GELU, with torch.pow."""
        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    class SelfAttention(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
            self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
            self.register_buffer("bias", torch.tril(torch.ones(cfg.block_size, cfg.block_size))
                                 .view(1, 1, cfg.block_size, cfg.block_size))
            self.n_head, self.n_embd = cfg.n_head, cfg.n_embd

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = F.softmax(att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf")), dim=-1)
            return self.c_proj((att @ v).transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(cfg.n_embd), SelfAttention(cfg), nn.LayerNorm(cfg.n_embd)
            self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
                                          c_proj=nn.Linear(4 * cfg.n_embd, cfg.n_embd), act=NewGELU()))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            m = self.mlp
            return x + m.c_proj(m.act(m.c_fc(self.ln_2(x))))

    class Transformer(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.block_size = cfg.block_size
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.n_embd), wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
                h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]), ln_f=nn.LayerNorm(cfg.n_embd)))
            self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)

        def get_block_size(self):
            return self.block_size

        def forward(self, idx, targets=None):
            t = idx.size(1)
            pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
            x = self.transformer.wte(idx) + self.transformer.wpe(pos)
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return logits, loss_of(logits, targets)

    return dict(bigram=Bigram, mlp=MLP, rnn=lambda cfg: RNN(cfg, "rnn"), gru=lambda cfg: RNN(cfg, "gru"),
                bow=BoW, transformer=Transformer)


# --- evaluation and sampling ---------------------------------------------------------------------

def evaluator(torch, data):
    @torch.inference_mode()
    def evaluate(model, dataset, batch_size=50, max_batches=None):
        model.eval()
        losses = []
        for i, (X, Y) in enumerate(data.DataLoader(dataset, shuffle=True, batch_size=batch_size, num_workers=0)):
            losses.append(model(X, Y)[1].item())
            if max_batches is not None and i >= max_batches:
                break
        model.train()
        return torch.tensor(losses).mean().item()
    return evaluate


def sampler(torch, F):
    @torch.no_grad()
    def generate(model, idx, new_tokens, top_k=None):
        """Extend idx by new_tokens characters, each drawn from the model's next-character
        distribution (cut to its top_k most likely when given)."""
        for _ in range(new_tokens):
            context = idx if idx.size(1) <= model.get_block_size() else idx[:, -model.get_block_size():]
            logits = model(context)[0][:, -1, :]
            if top_k is not None:
                v, _ = torch.topk(logits, top_k)
                logits[logits < v[:, [-1]]] = -float("Inf")
            idx = torch.cat((idx, torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)), dim=1)
        return idx

    def names(model, train, count=8, top_k=None):
        rows = generate(model, torch.zeros(count, 1, dtype=torch.long), train.output_length() - 1, top_k).tolist()
        return [train.decode(row[1:row.index(0, 1)] if 0 in row[1:] else row[1:]) for row in rows]
    return names


# --- the program ---------------------------------------------------------------------------------

def makemore(torch, nn, F, data, names, kind, work_dir, steps=20, eval_every=10, seed=3407, batch_size=8,
             resume=False):
    """makemore.py's main, cut to `steps` steps: returns what it prints, and the first batches.
    resume: start from the model saved in work_dir (--resume)."""
    torch.manual_seed(seed)
    train, test = split_names(torch, data, names)
    cfg = SimpleNamespace(vocab_size=train.vocab_size(), block_size=train.output_length(), **TINY)
    model = model_classes(torch, nn, F)[kind](cfg)
    if resume:
        model.load_state_dict(torch.load(f"{work_dir}/model.pt"))
    run = dict(split=(train.names[:3], test.names[-3:]), params=sum(p.numel() for p in model.parameters()),
               losses=[], evals=[], batches=[])
    if kind == "transformer":  # what makemore prints: the parameters without lm_head
        run["transformer_params"] = sum(p.numel() for p in model.transformer.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
    batches = EndlessBatches(data, train, batch_size=batch_size, pin_memory=True, num_workers=0)
    evaluate, best = evaluator(torch, data), None
    for step in range(steps):
        X, Y = batches.next()
        if step < 3:
            run["batches"].append(X.tolist())
        loss = model(X, Y)[1]
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run["losses"].append(loss.item())
        if step > 0 and step % eval_every == 0:
            losses = evaluate(model, train, batch_size=20, max_batches=3), evaluate(model, test, batch_size=20,
                                                                                     max_batches=3)
            run["evals"].append(losses)
            if best is None or losses[1] < best:
                torch.save(model.state_dict(), f"{work_dir}/model.pt")
                best = losses[1]
    run["samples"] = sampler(torch, F)(model, train, top_k=None)
    return run


def sample_only(torch, nn, F, data, names, kind, work_dir, seed=3407):
    """--sample-only --top-k 5: a fresh model, the saved state loaded into it, names sampled."""
    torch.manual_seed(seed)
    train, _ = split_names(torch, data, names)
    cfg = SimpleNamespace(vocab_size=train.vocab_size(), block_size=train.output_length(), **TINY)
    model = model_classes(torch, nn, F)[kind](cfg)
    model.load_state_dict(torch.load(f"{work_dir}/model.pt"))
    return sampler(torch, F)(model, train, count=10, top_k=5)
