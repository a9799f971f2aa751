"""Correct submissions of chapter 2, multi-head attention, in other styles."""

from correct import Correct

CHAPTER = "02_multi_head_attention"

CORRECT = [
    Correct("view, transpose, unflatten and flatten", CHAPTER, {
        "ex02_transpose_qkv": '''\
def transpose_qkv(X, num_heads):
    batch, n, _ = X.shape
    return X.view(batch, n, num_heads, -1).transpose(1, 2).flatten(0, 1)
''',
        "ex02_transpose_output": '''\
def transpose_output(X, num_heads):
    X = X.unflatten(0, (-1, num_heads)).transpose(1, 2)
    return X.flatten(2)
'''}),
    Correct("einsum attention with a lambda for the scale", CHAPTER, {
        "ex02_multi_head_attention": '''\
scale_of = lambda width: 1 / math.sqrt(width)


class MultiHeadAttention(nn.Module):
    def __init__(self, key_size, query_size, value_size, num_hiddens, num_heads, dropout, bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        q = transpose_qkv(self.W_q(queries), self.num_heads)
        k = transpose_qkv(self.W_k(keys), self.num_heads)
        v = transpose_qkv(self.W_v(values), self.num_heads)
        scores = torch.einsum("bqd,bkd->bqk", q, k) * scale_of(q.shape[-1])
        if valid_lens is not None:
            valid_lens = torch.repeat_interleave(valid_lens, repeats=self.num_heads, dim=0)
        self.attention_weights = _masked_softmax(scores, valid_lens)
        heads = torch.einsum("bqk,bkd->bqd", self.dropout(self.attention_weights), v)
        return self.W_o(transpose_output(heads, self.num_heads))
'''}),
    Correct("load_from_torch through load_state_dict and torch.split", CHAPTER, {
        "ex02_load_from_torch": '''\
PROJECTIONS = ("W_q", "W_k", "W_v")


def load_from_torch(mha, torch_mha):
    width = torch_mha.embed_dim
    weights = torch.split(torch_mha.in_proj_weight.detach(), width)
    biases = torch.split(torch_mha.in_proj_bias.detach(), width)
    state = {}
    for name, weight, bias in zip(PROJECTIONS, weights, biases):
        state[f"{name}.weight"], state[f"{name}.bias"] = weight.clone(), bias.clone()
    state["W_o.weight"] = torch_mha.out_proj.weight.detach().clone()
    state["W_o.bias"] = torch_mha.out_proj.bias.detach().clone()
    mha.load_state_dict(state)
    return mha
'''}),
    Correct("d2l's own code: a DotProductAttention submodule and a weights property; weights set through .data", CHAPTER, {
        'ex02_transpose_qkv': '''\
def transpose_qkv(X, num_heads):
    X = X.reshape(X.shape[0], X.shape[1], num_heads, -1)
    X = X.permute(0, 2, 1, 3)
    return X.reshape(-1, X.shape[2], X.shape[3])
''',
        'ex02_transpose_output': '''\
def transpose_output(X, num_heads):
    X = X.reshape(-1, num_heads, X.shape[1], X.shape[2])
    X = X.permute(0, 2, 1, 3)
    return X.reshape(X.shape[0], X.shape[1], -1)
''',
        'ex02_multi_head_attention': '''\
class DotProductAttention(nn.Module):
    def __init__(self, dropout, **kwargs):
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        self.attention_weights = _masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)


class MultiHeadAttention(nn.Module):
    def __init__(self, key_size, query_size, value_size, num_hiddens, num_heads, dropout, bias=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    @property
    def attention_weights(self):
        return self.attention.attention_weights

    def forward(self, queries, keys, values, valid_lens):
        queries = transpose_qkv(self.W_q(queries), self.num_heads)
        keys = transpose_qkv(self.W_k(keys), self.num_heads)
        values = transpose_qkv(self.W_v(values), self.num_heads)
        if valid_lens is not None:
            valid_lens = torch.repeat_interleave(valid_lens, repeats=self.num_heads, dim=0)
        output = self.attention(queries, keys, values, valid_lens)
        output_concat = transpose_output(output, self.num_heads)
        return self.W_o(output_concat)
''',
        'ex02_load_from_torch': '''\
def load_from_torch(mha, torch_mha):
    E = torch_mha.embed_dim
    W, b = torch_mha.in_proj_weight, torch_mha.in_proj_bias
    mha.W_q.weight.data = W[:E].detach().clone()
    mha.W_k.weight.data = W[E:2 * E].detach().clone()
    mha.W_v.weight.data = W[2 * E:].detach().clone()
    mha.W_q.bias.data, mha.W_k.bias.data, mha.W_v.bias.data = (t.detach().clone() for t in b.split(E))
    mha.W_o.weight.data = torch_mha.out_proj.weight.detach().clone()
    mha.W_o.bias.data = torch_mha.out_proj.bias.detach().clone()
    return mha
''',
    }),
]
