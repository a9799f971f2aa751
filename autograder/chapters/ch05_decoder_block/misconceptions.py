"""Chapter 5's misconceptions: (id, the wrong idea in one sentence, the heading of the section
that teaches the right one). Plain data: the grading parent process reads it without torch."""

MISCONCEPTIONS = [
    ("decoder_no_causal_mask",
     "in training the self-attention sees the whole target; each position may attend only to itself and to "
     "earlier positions",
     "Training and prediction"),
    ("cache_stores_outputs",
     "the cache keeps the block's outputs; it holds the block's inputs, the keys and values of its self-attention",
     "The cache"),
    ("cache_not_updated",
     "the cache is never extended, so a token decoded later cannot attend to the earlier ones",
     "The cache"),
    ("cache_wrong_block",
     "the blocks share one cache slot; block i keeps its own in state[2][i]",
     "The cache"),
    ("cross_attention_queries_encoder",
     "the encoder-decoder attention takes its queries from the encoder; the queries come from the decoder, the "
     "keys and values from the encoder",
     "The decoder block"),
    ("addnorm_arguments_swapped",
     "AddNorm's arguments are swapped: the first is the residual (the sublayer's input), the second the sublayer's "
     "output, on which dropout acts",
     "The decoder block"),
    ("decoder_enc_valid_lens_ignored",
     "the encoder-decoder attention ignores enc_valid_lens, so padded source positions get weight",
     "The decoder block"),
    ("pe_not_interleaved",
     "the sines and cosines are stacked in two halves; they alternate, sine in the even channels and cosine in "
     "the odd ones",
     "Positional encoding"),
    ("pe_offset_ignored",
     "the positional encoding ignores offset, so every call encodes positions from 0",
     "Exercise 2 (4 points): `PositionalEncoding`"),
    ("pe_table_in_state_dict",
     "the positional table is saved in the state_dict as if it were a weight; it is a constant",
     "Exercise 2 (4 points): `PositionalEncoding`"),
    ("pe_dtype_fixed",
     "the positional table is added in its own dtype, so the output does not follow the input's dtype",
     "Exercise 2 (4 points): `PositionalEncoding`"),
    ("decoder_position_offset_missing",
     "every token decoded one at a time gets position 0's encoding (d2l's bug); the encoding starts at the number "
     "of tokens already in the cache",
     "d2l's bug: every step at position 0"),
    ("decoder_embedding_unscaled",
     "the embeddings are not multiplied by sqrt(num_hiddens) before the positional encoding is added",
     "Exercise 3 (4 points): `TransformerDecoder`"),
]
