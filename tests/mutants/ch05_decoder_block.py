"""Buggy submissions of chapter 5, the decoder block."""

from mutants import Mutant

CHAPTER = "05_decoder_block"
BLOCK, PE, DECODER = "ex05_decoder_block", "ex05_positional_encoding", "ex05_transformer_decoder"
CACHE_LINE = "state[2][self.i] = key_values"
CAUSAL = ("dec_valid_lens = torch.arange(1, num_steps + 1, device=X.device).repeat(batch_size, 1)")
CROSS = "Z = self.addnorm2(Y, self.attention2(Y, enc_outputs, enc_outputs, enc_valid_lens))"
LAST = "return self.addnorm3(Z, self.ffn(Z)), state"
OFFSET = "offset = 0 if cache is None else cache.shape[1]             # tokens decoded so far; d2l forgets this"

MUTANTS = [
    Mutant("decoder_no_causal_mask", CHAPTER, ((CAUSAL, "dec_valid_lens = None"),), {BLOCK: 4}),
    Mutant("cache_stores_outputs", CHAPTER,
           ((CACHE_LINE, "pass"),
            (LAST, "output = self.addnorm3(Z, self.ffn(Z))\n"
                   "        state[2][self.i] = output if cache is None else torch.cat((cache, output), dim=1)\n"
                   "        return output, state")), {BLOCK: 3.5}),
    Mutant("cache_not_updated", CHAPTER, ((CACHE_LINE, "pass"),), {BLOCK: 3.5}),
    Mutant("cache_wrong_block", CHAPTER,
           (("cache = state[2][self.i]", "cache = state[2][0]"), (CACHE_LINE, "state[2][0] = key_values")),
           {BLOCK: 2}),
    Mutant("cross_attention_queries_encoder", CHAPTER,
           ((CROSS, "Z = self.addnorm2(Y, self.attention2(enc_outputs, Y, Y, enc_valid_lens))"),), {BLOCK: 4.5}),
    Mutant("addnorm_arguments_swapped", CHAPTER,
           (("Y = self.addnorm1(X, self.attention1(X, key_values, key_values, dec_valid_lens))",
             "Y = self.addnorm1(self.attention1(X, key_values, key_values, dec_valid_lens), X)"),
            (CROSS, "Z = self.addnorm2(self.attention2(Y, enc_outputs, enc_outputs, enc_valid_lens), Y)"),
            (LAST, "return self.addnorm3(self.ffn(Z), Z), state")), {BLOCK: 0.5}),
    Mutant("decoder_enc_valid_lens_ignored", CHAPTER,
           ((CROSS, "Z = self.addnorm2(Y, self.attention2(Y, enc_outputs, enc_outputs, None))"),), {BLOCK: 2}),
    Mutant("pe_not_interleaved", CHAPTER,
           (("P[:, :, 0::2] = torch.sin(angles)\n        P[:, :, 1::2] = torch.cos(angles)",
             "P = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)[None]"),), {PE: 4}),
    Mutant("pe_offset_ignored", CHAPTER,
           (("self.P[:, offset:offset + X.shape[1]]", "self.P[:, :X.shape[1]]"),), {PE: 1}),
    Mutant("pe_table_in_state_dict", CHAPTER,
           (('self.register_buffer("P", P.to(torch.get_default_dtype()), persistent=False)',
             'self.register_buffer("P", P.to(torch.get_default_dtype()))'),), {PE: 1}),
    Mutant("pe_dtype_fixed", CHAPTER,
           ((".to(dtype=X.dtype, device=X.device)   # (1, num_steps, num_hiddens)",
             ".to(device=X.device)   # (1, num_steps, num_hiddens)"),), {PE: 1}),
    Mutant("decoder_position_offset_missing", CHAPTER, ((OFFSET, "offset = 0"),), {DECODER: 1}),
    Mutant("decoder_embedding_unscaled", CHAPTER,
           (("self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens), offset)",
             "self.pos_encoding(self.embedding(X), offset)"),), {DECODER: 1}),
]
