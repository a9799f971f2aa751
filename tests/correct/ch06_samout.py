"""Correct submissions of chapter 6, SamOut, in other styles."""

from correct import Correct

CHAPTER = "06_samout"

CORRECT = [
    Correct("a NamedTuple state, no head split (cummax acts per channel)", CHAPTER, {
        "ex06_max_state": '''\
from typing import NamedTuple


class RunningMax(NamedTuple):
    running_max: torch.Tensor   # (batch, hidden_dim): the maximum over the tokens read so far


class MaxState(nn.Module):
    def __init__(self, hidden_dim, heads):
        super().__init__()
        self.head_size = hidden_dim // heads
        self.head0 = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.head1 = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.head2 = nn.Linear(hidden_dim, hidden_dim, bias=False)

    def forward(self, x, state=None):
        skip = self.head1(x)
        z = (self.head0(x) + skip) * self.head_size ** -0.5
        m = z.cummax(dim=1).values
        if state is not None:
            m = torch.max(m, state.running_max[:, None, :])
        return (m + self.head2(x)) * m + skip, RunningMax(m[:, -1].clone())
'''}),
    Correct("a frozen dataclass state, view instead of permute, a DecoderLayer in timm's act_layer= style", CHAPTER, {
        "ex06_max_state": '''\
from dataclasses import dataclass


@dataclass(frozen=True)
class MaxStateCarry:
    last: torch.Tensor


class MaxState(nn.Module):
    def __init__(self, hidden_dim, heads):
        super().__init__()
        self.heads, self.head_size = heads, hidden_dim // heads
        self.head0, self.head1, self.head2 = (nn.Linear(hidden_dim, hidden_dim, bias=False) for _ in range(3))

    def forward(self, x, state=None):
        b, s, d = x.shape
        skip = self.head1(x)
        z = (self.head0(x) + skip) / math.sqrt(self.head_size)
        z = z.view(b, s, self.heads, self.head_size)
        m, _ = torch.cummax(z, dim=1)
        if state is not None:
            m = torch.maximum(m, state.last.unsqueeze(1))
        carry = MaxStateCarry(m[:, -1].clone())
        m = m.reshape(b, s, d)
        return (m + self.head2(x)) * m + skip, carry
''',
        "ex06_decoder_layer": '''\
class DecoderLayer(nn.Module):
    def __init__(self, hidden_size, num_heads, mixer_layer=MaxState, ffn_layer=FeedForward,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        self.self_attention = mixer_layer(hidden_size, num_heads)   # the learner's own MaxState, bound at definition
        self.ffn = ffn_layer(hidden_size)
        self.layer_norm = norm_layer(hidden_size)
        self.alpha = nn.Parameter(torch.full((), 0.5))

    def forward(self, x, state=None):
        mixed, state = self.self_attention(x, state)
        return self.layer_norm(self.alpha * self.ffn(mixed) + (1 - self.alpha) * x), state
'''}),
    Correct("a dict-subclass state per layer, F.linear for the tied logits, F.relu in the gate", CHAPTER, {
        "ex06_feed_forward": '''\
class FeedForward(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        half = hidden_size // 2
        self.ffn1, self.gate = nn.Linear(hidden_size, half), nn.Linear(hidden_size, half)
        self.ffn2 = nn.Linear(half, hidden_size)

    def forward(self, x):
        return self.ffn2(self.ffn1(x) * F.relu(self.gate(x)))
''',
        "ex06_sam_out": '''\
class LayerStates(dict):
    """layer index -> that layer's state"""


class SamOut(nn.Module):
    def __init__(self, voc_size, hidden_size, num_heads, num_layers):
        super().__init__()
        self.em = nn.Embedding(voc_size, hidden_size, padding_idx=3)
        self.decoder_layers = nn.ModuleList([DecoderLayer(hidden_size, num_heads) for _ in range(num_layers)])

    def forward(self, x, state=None):
        x = self.em(x)
        new_state = LayerStates()
        for i, layer in enumerate(self.decoder_layers):
            y, new_state[i] = layer(x, None if state is None else state[i])
            x = y + x
        return F.linear(x, self.em.weight), new_state
'''}),
    Correct("generate with a while loop and sampling through a helper", CHAPTER, {
        "ex06_generate": '''\
def keep_top_k(logits, k):
    if k is None:
        return logits
    threshold = logits.topk(min(k, logits.size(-1)), dim=-1).values[..., -1, None]
    return logits.masked_fill(logits < threshold, -float("inf"))


@torch.no_grad()
def generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None):
    out = [prompt_ids]
    logits, state = model(prompt_ids)
    produced = 0
    while produced < max_new_tokens:
        scores = keep_top_k(logits[:, -1, :] / temperature, top_k)
        token = torch.multinomial(F.softmax(scores, dim=-1), 1)
        out.append(token)
        produced += 1
        if produced < max_new_tokens:
            logits, state = model(token, state)
    return torch.cat(out, dim=1)
'''}),
    Correct('tuple states, the state read as a first position, inference_mode, Categorical sampling', CHAPTER, {
        'ex06_max_state': '''\
class MaxState(nn.Module):
    def __init__(self, hidden_dim, heads):
        super().__init__()
        self.heads = heads
        self.head_size = hidden_dim // heads
        self.head0 = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.head1 = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.head2 = nn.Linear(hidden_dim, hidden_dim, bias=False)

    def forward(self, x, state=None):
        h1 = self.head1(x)
        z = (self.head0(x) + h1) / self.head_size ** 0.5
        if state is not None:
            z = torch.cat([state[0].unsqueeze(1), z], dim=1)
        m = z.cummax(1)[0]
        if state is not None:
            m = m[:, 1:]
        return (m + self.head2(x)) * m + h1, (m[:, -1],)
''',
        'ex06_sam_out': '''\
class SamOut(nn.Module):
    def __init__(self, voc_size, hidden_size, num_heads, num_layers):
        super().__init__()
        self.em = nn.Embedding(voc_size, hidden_size, padding_idx=3)
        self.decoder_layers = nn.ModuleList([DecoderLayer(hidden_size, num_heads) for _ in range(num_layers)])

    def forward(self, x, state=None):
        x = self.em(x)
        states = ()
        for i, layer in enumerate(self.decoder_layers):
            y, s = layer(x, state[i] if state is not None else None)
            states += (s,)
            x = x + y
        return x @ self.em.weight.t(), states
''',
        'ex06_generate': '''\
@torch.inference_mode()
def generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None):
    logits, state = model(prompt_ids)
    tokens = prompt_ids
    for i in range(max_new_tokens):
        last = logits[:, -1, :] / temperature
        if top_k is not None:
            v, _ = torch.topk(last, min(top_k, last.size(-1)))
            last[last < v[:, [-1]]] = -float("Inf")
        nxt = torch.distributions.Categorical(logits=last).sample().unsqueeze(1)
        tokens = torch.cat((tokens, nxt), dim=1)
        if i + 1 < max_new_tokens:
            logits, state = model(nxt, state)
    return tokens
''',
    }),
]
