"""Correct submissions of chapter 1, self-attention, in other styles."""

from correct import Correct

CHAPTER = "01_self_attention"

CORRECT = [
    Correct("helper constant in its own cell, einsum, torch.where", CHAPTER, {
        "ex01_scaled_dot_product_attention": '''\
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.size(-1) ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, NEG_INF)
    weights = F.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.where(mask, weights, torch.zeros_like(weights))
    return torch.einsum("...qk,...kd->...qd", weights, v), weights
'''}, helpers=('NEG_INF = float("-inf")\n',)),
    Correct("lambdas and functools.partial", CHAPTER, {
        "ex01_scaled_dot_product_attention": '''\
from functools import partial


def _attend(q, k, v, mask=None, fill=-math.inf):
    scores = q @ k.mT / math.sqrt(k.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), fill)
    weights = scores.softmax(-1).nan_to_num(0.0)
    return weights @ v, weights


scaled_dot_product_attention = partial(_attend, fill=-math.inf)
''',
        "ex01_causal_mask": "causal_mask = lambda n, device=None: torch.tril(torch.ones(n, n, device=device)).bool()\n",
    }),
    Correct("tables built by a call, a function made by a call, view and reshape", CHAPTER, {
        "ex01_causal_mask": '''\
def mask_maker(table):
    def causal_mask(n, device=None):
        if n <= len(table):
            return table[n - 1].to(device)
        return torch.arange(n, device=device).view(-1, 1) >= torch.arange(n, device=device).view(1, -1)
    return causal_mask


causal_mask = mask_maker(MASKS)
''',
        "ex01_masked_softmax": '''\
def masked_softmax(X, valid_lens):
    if valid_lens is None:
        return X.softmax(dim=-1)
    shape = X.shape
    if valid_lens.dim() == 1:
        valid_lens = valid_lens[:, None].expand(shape[0], shape[1])
    X = X.reshape(-1, shape[-1])
    lens = valid_lens.reshape(-1)
    X = X.masked_fill(POSITIONS[: shape[-1]].to(X.device)[None, :] >= lens[:, None], MASK_VALUE)
    return X.softmax(dim=-1).view(shape)
''',
    }, helpers=('''\
def build_masks(largest):
    return [torch.ones(n, n, dtype=torch.bool).tril() for n in range(1, largest + 1)]


MASKS = build_masks(8)
POSITIONS = torch.arange(4096)
MASK_VALUE = -1e6
''',)),
    Correct("SelfAttention with its own attention helper and a class constant", CHAPTER, {
        "ex01_self_attention": '''\
class SelfAttention(nn.Module):
    FILL = float("-inf")

    def __init__(self, input_n, hidden_n):
        super().__init__()
        self.hidden_n = hidden_n
        self.W_q, self.W_k, self.W_v = (nn.Linear(input_n, hidden_n) for _ in range(3))
        self.attention_weights = None

    def forward(self, Q, K, V, mask=None):
        q, k, v = self.W_q(Q), self.W_k(K), self.W_v(V)
        scores = q @ k.transpose(-1, -2) / self.hidden_n ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, self.FILL)
        self.attention_weights = torch.nan_to_num(scores.softmax(-1))
        return self.attention_weights @ v
'''}),
    Correct("a NamedTuple result, d2l's sequence_mask helper, Linear layers made with setattr", CHAPTER, {
        'ex01_scaled_dot_product_attention': '''\
from typing import NamedTuple

class Attended(NamedTuple):
    output: torch.Tensor
    weights: torch.Tensor

def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return Attended(weights @ v, weights)
''',
        'ex01_masked_softmax': '''\
def sequence_mask(X, valid_len, value=0):
    maxlen = X.size(1)
    mask = torch.arange((maxlen), dtype=torch.float32, device=X.device)[None, :] < valid_len[:, None]
    X[~mask] = value
    return X

def masked_softmax(X, valid_lens):
    if valid_lens is None:
        return nn.functional.softmax(X, dim=-1)
    else:
        shape = X.shape
        if valid_lens.dim() == 1:
            valid_lens = torch.repeat_interleave(valid_lens, shape[1])
        else:
            valid_lens = valid_lens.reshape(-1)
        X = sequence_mask(X.reshape(-1, shape[-1]), valid_lens, value=-1e6)
        return nn.functional.softmax(X.reshape(shape), dim=-1)
''',
        'ex01_self_attention': '''\
class SelfAttention(nn.Module):
    def __init__(self, input_n, hidden_n):
        super().__init__()
        for name in ("W_q", "W_k", "W_v"):
            setattr(self, name, nn.Linear(input_n, hidden_n))

    def forward(self, Q, K, V, mask=None):
        out, w = scaled_dot_product_attention(self.W_q(Q), self.W_k(K), self.W_v(V), mask)
        self.attention_weights = w
        return out
''',
    }),
]
