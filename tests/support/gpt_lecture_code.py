"""Code in the style of "Let's build GPT" (karpathy/ng-video-lecture: bigram.py, then gpt.py),
written against whatever modules are passed in as `torch`, `nn` and `F`:
test_gpt_lecture.py runs each function once on PyTorch and once on tinygrad_wave, the
import switch a learner makes and nothing else.

Not the scripts themselves: the same patterns (nn.Module subclasses, register_buffer,
masked_fill, ModuleList, self.apply, AdamW, @torch.no_grad() evaluation, the sampling
loop) on a small text -- the names of data/names.txt, one per line -- at sizes that run
in seconds. Each function reports what a script would print through `say` and returns
the numbers to compare.

The edits from the scripts, the same for both libraries: the imports; the text; the
sizes (batch, block, n_embd, heads, layers, steps, eval_iters); and `dropout` as an
argument (0 for the comparison of whole training runs).
"""


def char_codec(torch, text):
    """The scripts' character tokenizer, and the text as one long int64 tensor, split 90/10."""
    alphabet = sorted(set(text))
    to_id = {c: i for i, c in enumerate(alphabet)}
    to_char = dict(enumerate(alphabet))
    ids = torch.tensor([to_id[c] for c in text], dtype=torch.long)
    cut = int(0.9 * len(ids))
    decode = lambda seq: "".join(to_char[i] for i in seq)  # noqa: E731 (the scripts' style)
    return len(alphabet), ids[:cut], ids[cut:], decode


def batches(torch, train_ids, val_ids, block_size, batch_size, device):
    """get_batch: batch_size random windows of block_size ids, and the same shifted by one."""
    def get_batch(split):
        source = train_ids if split == "train" else val_ids
        starts = torch.randint(len(source) - block_size, (batch_size,))
        x = torch.stack([source[s:s + block_size] for s in starts])
        y = torch.stack([source[s + 1:s + block_size + 1] for s in starts])
        return x.to(device), y.to(device)
    return get_batch


def evaluator(torch, model, get_batch, eval_iters):
    """estimate_loss: the mean loss over eval_iters batches of each split, in eval mode."""
    @torch.no_grad()
    def estimate_loss():
        means = {}
        model.eval()
        for split in ("train", "val"):
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                _, loss = model(*get_batch(split))
                losses[k] = loss.item()
            means[split] = losses.mean()
        model.train()
        return means
    return estimate_loss


def next_token_loss(F, logits, targets):
    """(B, T, C) logits against (B, T) targets: cross-entropy over all B * T positions."""
    B, T, C = logits.shape
    return F.cross_entropy(logits.view(B * T, C), targets.view(B * T))


def sample(torch, F, model, idx, new_tokens, block_size=None):
    """generate: append one token at a time, drawn from the softmax of the last position."""
    for _ in range(new_tokens):
        context = idx if block_size is None else idx[:, -block_size:]
        logits, _ = model(context)
        probs = F.softmax(logits[:, -1, :], dim=-1)
        idx = torch.cat((idx, torch.multinomial(probs, num_samples=1)), dim=1)
    return idx


def bigram(torch, nn, F, text, say, batch_size=32, block_size=8, max_iters=300, eval_interval=100,
           learning_rate=1e-2, eval_iters=20, new_tokens=200):
    """bigram.py: a table of next-token logits, trained with AdamW; prints losses, then a sample."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(1337)
    vocab_size, train_ids, val_ids, decode = char_codec(torch, text)
    get_batch = batches(torch, train_ids, val_ids, block_size, batch_size, device)

    class BigramModel(nn.Module):
        def __init__(self, vocab_size):
            super().__init__()
            self.table = nn.Embedding(vocab_size, vocab_size)

        def forward(self, idx, targets=None):
            logits = self.table(idx)
            return logits, None if targets is None else next_token_loss(F, logits, targets)

    model = BigramModel(vocab_size).to(device)
    estimate_loss = evaluator(torch, model, get_batch, eval_iters)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    for step in range(max_iters):
        if step % eval_interval == 0:
            losses = estimate_loss()
            say(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        xb, yb = get_batch("train")
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    start = torch.zeros((1, 1), dtype=torch.long, device=device)
    say(decode(sample(torch, F, model, start, new_tokens)[0].tolist()))


def gpt_model(torch, nn, F, vocab_size, block_size, n_embd, n_head, n_layer, dropout, device):
    """gpt.py's model: a decoder-only transformer (heads of causal self-attention, a
    feed-forward net, layer norm, residual connections), initialised by self.apply."""

    class Head(nn.Module):
        """One head of causal self-attention: each position mixes the values of the positions
        up to it, weighted by softmax(query . key / sqrt(head_size))."""

        def __init__(self, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            affinity = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            affinity = affinity.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # no looking ahead
            weights = self.dropout(F.softmax(affinity, dim=-1))
            return weights @ self.value(x)

    class MultiHeadAttention(nn.Module):
        def __init__(self, num_heads, head_size):
            super().__init__()
            self.heads = nn.ModuleList([Head(head_size) for _ in range(num_heads)])
            self.proj = nn.Linear(head_size * num_heads, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))

    class FeedForward(nn.Module):
        def __init__(self, n_embd):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd),
                                     nn.Dropout(dropout))

        def forward(self, x):
            return self.net(x)

    class Block(nn.Module):
        """Communication (attention) then computation (feed-forward), each on a layer-normed
        copy of the residual stream, added back to it."""

        def __init__(self, n_embd, n_head):
            super().__init__()
            self.sa = MultiHeadAttention(n_head, n_embd // n_head)
            self.ffwd = FeedForward(n_embd)
            self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)

        def forward(self, x):
            x = x + self.sa(self.ln1(x))
            return x + self.ffwd(self.ln2(x))

    class GPTLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
            self.position_embedding_table = nn.Embedding(block_size, n_embd)
            self.blocks = nn.Sequential(*[Block(n_embd, n_head=n_head) for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.lm_head = nn.Linear(n_embd, vocab_size)
            self.apply(self._init_weights)  # the order of these draws is apply's

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=device))
            logits = self.lm_head(self.ln_f(self.blocks(x)))
            return logits, None if targets is None else next_token_loss(F, logits, targets)

    return GPTLanguageModel().to(device)


def gpt(torch, nn, F, text, say, batch_size=8, block_size=16, max_iters=200, eval_interval=100,
        learning_rate=1e-3, eval_iters=5, n_embd=32, n_head=4, n_layer=2, dropout=0.0, new_tokens=100,
        dtype=None):
    """gpt.py: its model trained with AdamW; returns the parameter count, the training losses
    of every step, the evaluations, and the sampled text. dtype: the model cast to it after
    its float32 initialisation (one edit: `model = model.to(dtype)`)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(1337)
    vocab_size, train_ids, val_ids, decode = char_codec(torch, text)
    get_batch = batches(torch, train_ids, val_ids, block_size, batch_size, device)
    model = gpt_model(torch, nn, F, vocab_size, block_size, n_embd, n_head, n_layer, dropout, device)
    if dtype is not None:
        model = model.to(getattr(torch, dtype))
    parameters = sum(p.numel() for p in model.parameters())
    say(f"{parameters / 1e6} M parameters")
    estimate_loss = evaluator(torch, model, get_batch, eval_iters)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    evaluations, losses = [], []
    for step in range(max_iters):
        if step % eval_interval == 0 or step == max_iters - 1:
            means = estimate_loss()
            evaluations.append((means["train"].item(), means["val"].item()))
            say(f"step {step}: train loss {means['train']:.4f}, val loss {means['val']:.4f}")
        xb, yb = get_batch("train")
        _, loss = model(xb, yb)
        losses.append(loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    start = torch.zeros((1, 1), dtype=torch.long, device=device)
    text = decode(sample(torch, F, model, start, new_tokens, block_size)[0].tolist())
    say(text)
    return {"parameters": parameters, "evaluations": evaluations, "losses": losses, "text": text}
