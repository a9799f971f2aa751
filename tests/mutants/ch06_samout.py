"""Buggy submissions of chapter 6, SamOut."""

from mutants import Mutant

CHAPTER = "06_samout"
MAX_STATE, FFN, LAYER, SAM_OUT, GENERATE = ("ex06_max_state", "ex06_feed_forward", "ex06_decoder_layer",
                                            "ex06_sam_out", "ex06_generate")

SCALE = "z = (self.head0(x) + skip) / math.sqrt(self.head_size)"
SPLIT = "z = z.reshape(b, s, self.heads, self.head_size).permute(0, 2, 1, 3)"
MERGE = "m = m.permute(0, 2, 1, 3).reshape(b, s, -1)"
CUMMAX = "m = torch.cummax(z, dim=2).values"
CONTINUE = "m = torch.maximum(m, state.unsqueeze(2))"
FFN_LINE = "return self.ffn2(self.ffn1(x) * self.relu(self.gate(x)))"
MIX = "self.alpha * self.ffn(y) + (1 - self.alpha) * x"
EMBEDDING = ("self.em = nn.Embedding(voc_size, hidden_size, padding_idx=3)\n"
             "        self.decoder_layers = nn.ModuleList(DecoderLayer(")
LAYERS = "self.decoder_layers = nn.ModuleList(DecoderLayer(hidden_size, num_heads) for _ in range(num_layers))"
LOGITS = "return x @ self.em.weight.T, new_state"
NEW_LIST = "new_state = []\n        for i, layer in enumerate(self.decoder_layers):"
STEP = "logits, state = model(tokens[:, -1:], state)"
TEMPERATURE = "next_logits = logits[:, -1] / temperature"

MUTANTS = [
    Mutant("cummax_wrong_axis", CHAPTER, ((CUMMAX, "m = torch.cummax(z, dim=1).values"),), {MAX_STATE: 5}),
    Mutant("cummax_heads_mixed", CHAPTER,
           ((SPLIT, "z = z.reshape(b, self.heads, s, self.head_size)"), (MERGE, "m = m.reshape(b, s, -1)")),
           {MAX_STATE: 5}),
    Mutant("max_state_unscaled", CHAPTER, ((SCALE, "z = self.head0(x) + skip"),), {MAX_STATE: 2}),
    Mutant("max_state_scaled_by_hidden_dim", CHAPTER,
           ((SCALE, "z = (self.head0(x) + skip) / math.sqrt(x.shape[-1])"),), {MAX_STATE: 2}),
    Mutant("max_state_ignores_state", CHAPTER, ((CONTINUE, "pass"),), {MAX_STATE: 3}),
    Mutant("ffn_relu_on_wrong_branch", CHAPTER,
           ((FFN_LINE, "return self.ffn2(self.relu(self.ffn1(x)) * self.gate(x))"),), {FFN: 1}),
    Mutant("ffn_gate_without_relu", CHAPTER, ((FFN_LINE, "return self.ffn2(self.ffn1(x) * self.gate(x))"),), {FFN: 1}),
    Mutant("alpha_on_wrong_branch", CHAPTER, ((MIX, "(1 - self.alpha) * self.ffn(y) + self.alpha * x"),), {LAYER: 1.5}),
    Mutant("samout_residual_missing", CHAPTER,
           (("x = x + y                                            # each layer's output",
             "x = y                                                # each layer's output"),), {SAM_OUT: 2}),
    Mutant("samout_separate_output_head", CHAPTER,
           ((LAYERS, LAYERS + "\n        self.head = nn.Linear(hidden_size, voc_size, bias=False)"),
            (LOGITS, "return self.head(x), new_state")), {SAM_OUT: 5}),
    Mutant("samout_no_padding_idx", CHAPTER,
           ((EMBEDDING, EMBEDDING.replace(", padding_idx=3", "")),), {SAM_OUT: 2}),
    Mutant("samout_state_modified_in_place", CHAPTER,
           ((NEW_LIST, NEW_LIST.replace("new_state = []", "new_state = state")),
            ("new_state.append(layer_state)", "new_state[i] = layer_state")), {SAM_OUT: 1}),
    Mutant("generate_rereads_sequence", CHAPTER, ((STEP, "logits, state = model(tokens)"),), {GENERATE: 1}),
    Mutant("generate_drops_state", CHAPTER, ((STEP, "logits, state = model(tokens[:, -1:])"),), {GENERATE: 2}),
    Mutant("generate_temperature_multiplied", CHAPTER,
           ((TEMPERATURE, "next_logits = logits[:, -1] * temperature"),), {GENERATE: 1}),
]
