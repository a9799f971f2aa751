"""Correct submissions of chapter 3, Add & Norm, in other styles."""

from correct import Correct

CHAPTER = "03_add_and_norm"

CORRECT = [
    Correct("sums over numel, rsqrt, a dims helper", CHAPTER, {
        "ex03_layer_norm": '''\
def trailing_dims(x, k):
    return list(range(x.dim() - k, x.dim()))


def layer_norm(x, gamma, beta, eps=1e-5):
    dims = trailing_dims(x, gamma.dim())
    count = gamma.numel()
    mean = x.sum(dim=dims, keepdim=True) / count
    centred = x - mean
    var = (centred * centred).sum(dim=dims, keepdim=True) / count
    return centred * torch.rsqrt(var + eps) * gamma + beta
'''}),
    Correct("dropout with bernoulli and torch.where", CHAPTER, {
        "ex03_dropout": '''\
def dropout(x, p, training):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    keep = torch.bernoulli(torch.full_like(x, 1 - p)).bool()
    return torch.where(keep, x / (1 - p), torch.zeros_like(x))
'''}),
    Correct("AddNorm and PositionWiseFFN written the other way round", CHAPTER, {
        "ex03_add_norm": '''\
class AddNorm(nn.Module):
    def __init__(self, normalized_shape, dropout):
        super().__init__()
        self.ln = nn.LayerNorm(normalized_shape)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, X, Y):
        Y = self.dropout(Y)
        return self.ln(X + Y)
''',
        "ex03_position_wise_ffn": '''\
class PositionWiseFFN(nn.Module):
    def __init__(self, ffn_num_input, ffn_num_hiddens, ffn_num_outputs):
        super().__init__()
        self.dense1 = nn.Linear(ffn_num_input, ffn_num_hiddens)
        self.relu = nn.ReLU()
        self.dense2 = nn.Linear(ffn_num_hiddens, ffn_num_outputs)

    def forward(self, X):
        hidden = F.relu(self.dense1(X))
        return self.dense2(hidden)
''',
        "ex03_encoder_block": '''\
class EncoderBlock(nn.Module):
    def __init__(self, key_size, query_size, value_size, num_hiddens, norm_shape, ffn_num_input,
                 ffn_num_hiddens, num_heads, dropout, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.attention = MultiHeadAttention(key_size=key_size, query_size=query_size, value_size=value_size,
                                            num_hiddens=num_hiddens, num_heads=num_heads, dropout=dropout,
                                            bias=use_bias)
        self.addnorm1 = AddNorm(norm_shape, dropout)
        self.ffn = PositionWiseFFN(ffn_num_input, ffn_num_hiddens, num_hiddens)
        self.addnorm2 = AddNorm(norm_shape, dropout)

    def forward(self, X, valid_lens=None):
        attended = self.attention(X, X, X, valid_lens)
        Y = self.addnorm1(X, attended)
        return self.addnorm2(Y, self.ffn(Y))
'''}),
]
