"""Correct submissions of chapter 5, the decoder block, in other styles."""

from correct import Correct

CHAPTER = "05_decoder_block"

CORRECT = [
    Correct("a table in a plain attribute built by a helper, exp-log frequencies", CHAPTER, {
        "ex05_positional_encoding": '''\
def sinusoid_table(max_len, num_hiddens):
    positions = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    rates = torch.exp(-math.log(10000.0) * torch.arange(0, num_hiddens, 2, dtype=torch.float64) / num_hiddens)
    table = torch.zeros(max_len, num_hiddens, dtype=torch.float64)
    table[:, 0::2] = torch.sin(positions * rates)
    table[:, 1::2] = torch.cos(positions * rates)
    return table.unsqueeze(0)


class PositionalEncoding(nn.Module):
    def __init__(self, num_hiddens, dropout, max_len=1000):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.P = sinusoid_table(max_len, num_hiddens)

    def forward(self, X, offset=0):
        P = self.P[:, offset:offset + X.shape[1], :]
        return self.dropout(X + P.to(X))
'''}),
    Correct("the state unpacked, an OrderedDict of blocks", CHAPTER, {
        "ex05_decoder_block": '''\
class DecoderBlock(nn.Module):
    def __init__(self, key_size, query_size, value_size, num_hiddens, norm_shape, ffn_num_input,
                 ffn_num_hiddens, num_heads, dropout, i):
        super().__init__()
        self.i = i
        self.attention1 = MultiHeadAttention(key_size, query_size, value_size, num_hiddens, num_heads, dropout)
        self.addnorm1 = AddNorm(norm_shape, dropout)
        self.attention2 = MultiHeadAttention(key_size, query_size, value_size, num_hiddens, num_heads, dropout)
        self.addnorm2 = AddNorm(norm_shape, dropout)
        self.ffn = PositionWiseFFN(ffn_num_input, ffn_num_hiddens, num_hiddens)
        self.addnorm3 = AddNorm(norm_shape, dropout)

    def forward(self, X, state):
        enc_outputs, enc_valid_lens, caches = state
        if caches[self.i] is not None:
            caches[self.i] = torch.cat([caches[self.i], X], dim=1)
        else:
            caches[self.i] = X
        key_values = caches[self.i]
        valid = None
        if self.training:
            steps = torch.arange(1, X.shape[1] + 1, device=X.device)
            valid = steps.unsqueeze(0).expand(X.shape[0], -1)
        X2 = self.addnorm1(X, self.attention1(X, key_values, key_values, valid))
        Y = self.addnorm2(X2, self.attention2(X2, enc_outputs, enc_outputs, enc_valid_lens))
        return self.addnorm3(Y, self.ffn(Y)), state
''',
        "ex05_transformer_decoder": '''\
from collections import OrderedDict


class TransformerDecoder(nn.Module):
    def __init__(self, vocab_size, key_size, query_size, value_size, num_hiddens, norm_shape,
                 ffn_num_input, ffn_num_hiddens, num_heads, num_layers, dropout):
        super().__init__()
        self.num_hiddens, self.num_layers = num_hiddens, num_layers
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout)
        self.blks = nn.Sequential(OrderedDict(
            (f"block{i}", DecoderBlock(key_size, query_size, value_size, num_hiddens, norm_shape, ffn_num_input,
                                       ffn_num_hiddens, num_heads, dropout, i))
            for i in range(num_layers)))
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, enc_valid_lens):
        return [enc_outputs, enc_valid_lens, [None for _ in range(self.num_layers)]]

    def forward(self, X, state):
        past = state[2][0]
        start = past.shape[1] if past is not None else 0
        X = self.pos_encoding(self.embedding(X) * self.num_hiddens ** 0.5, offset=start)
        for block in self.blks:
            X, state = block(X, state)
        return self.dense(X), state
'''}),
    Correct("d2l's own code: a float32 table in a plain attribute, the cache checked against None", CHAPTER, {
        'ex05_positional_encoding': '''\
class PositionalEncoding(nn.Module):
    def __init__(self, num_hiddens, dropout, max_len=1000):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.P = torch.zeros((1, max_len, num_hiddens))
        X = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1) / torch.pow(
            10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        self.P[:, :, 0::2] = torch.sin(X)
        self.P[:, :, 1::2] = torch.cos(X)

    def forward(self, X, offset=0):
        X = X + self.P[:, offset:offset + X.shape[1], :].to(X.device, X.dtype)
        return self.dropout(X)
''',
        'ex05_decoder_block': '''\
class DecoderBlock(nn.Module):
    def __init__(self, key_size, query_size, value_size, num_hiddens, norm_shape, ffn_num_input,
                 ffn_num_hiddens, num_heads, dropout, i, **kwargs):
        super().__init__(**kwargs)
        self.i = i
        self.attention1 = MultiHeadAttention(key_size, query_size, value_size, num_hiddens, num_heads, dropout)
        self.addnorm1 = AddNorm(norm_shape, dropout)
        self.attention2 = MultiHeadAttention(key_size, query_size, value_size, num_hiddens, num_heads, dropout)
        self.addnorm2 = AddNorm(norm_shape, dropout)
        self.ffn = PositionWiseFFN(ffn_num_input, ffn_num_hiddens, num_hiddens)
        self.addnorm3 = AddNorm(norm_shape, dropout)

    def forward(self, X, state):
        enc_outputs, enc_valid_lens = state[0], state[1]
        if state[2][self.i] is None:
            key_values = X
        else:
            key_values = torch.cat((state[2][self.i], X), axis=1)
        state[2][self.i] = key_values
        if self.training:
            batch_size, num_steps, _ = X.shape
            dec_valid_lens = torch.arange(1, num_steps + 1, device=X.device).repeat(batch_size, 1)
        else:
            dec_valid_lens = None
        X2 = self.attention1(X, key_values, key_values, dec_valid_lens)
        Y = self.addnorm1(X, X2)
        Y2 = self.attention2(Y, enc_outputs, enc_outputs, enc_valid_lens)
        Z = self.addnorm2(Y, Y2)
        return self.addnorm3(Z, self.ffn(Z)), state
''',
    }),
]
