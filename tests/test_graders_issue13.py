"""Graders' fixes of issue 13: correct code in other styles keeps full marks, known bugs are named,
the feedback page states each misconception once."""

import pytest

from autograder.feedback import feedback_html
from autograder.misconceptions import MISCONCEPTIONS
from autograder.sandbox import grade_submission
from conftest import edited_solution

DECODER_LAYER_INIT = "def __init__(self, hidden_size, num_heads):\n        super().__init__()\n        ### BEGIN SOLUTION\n        self.self_attention = MaxState(hidden_size, num_heads)\n        self.ffn = FeedForward(hidden_size)\n        self.layer_norm = nn.LayerNorm(hidden_size)"
DECODER_LAYER_FACTORIES = ("def __init__(self, hidden_size, num_heads, mixer_layer=MaxState, ffn_layer=FeedForward,\n"
                           "                 norm_layer=nn.LayerNorm):\n        super().__init__()\n        ### BEGIN SOLUTION\n"
                           "        self.self_attention = mixer_layer(hidden_size, num_heads)\n"
                           "        self.ffn = ffn_layer(hidden_size)\n        self.layer_norm = norm_layer(hidden_size)")


def test_decoder_layer_built_from_its_own_classes_gets_full_marks(tmp_path):
    """Sub-modules built from the learner's own MaxState (a default argument) are not the reference's class."""
    notebook = edited_solution(tmp_path, "06_samout", [(DECODER_LAYER_INIT, DECODER_LAYER_FACTORIES)])
    result = grade_submission(notebook, chapter="06_samout")
    assert result.status == "ok", result.detail
    layer = next(e for e in result.exercises if e.id == "ex06_decoder_layer")
    assert layer.points == layer.max_points, layer.reasons


def test_feedback_states_each_misconception_once():
    m = MISCONCEPTIONS["no_scaling"]
    record = {"student": "s", "chapter": "01_self_attention", "status": "ok", "total": 1, "max_total": 4,
              "exercises": [{"id": "ex01_scaled_dot_product_attention", "name": "scaled_dot_product_attention",
                             "points": 1, "max_points": 4, "checks": [
                                 {"test": "test_output", "outcome": "failed", "points": 0, "max_points": 3,
                                  "message": "output: differs",
                                  "misconception": m.id}]}]}
    page = feedback_html(record)
    assert page.count(m.hint) == 1 and page.count(m.id) == 1
    assert "output: differs" in page


def test_causal_mask_off_by_one_hint_describes_the_bug():
    """The bug is tril(-1): the diagonal is left out, so a position cannot attend to itself."""
    hint = MISCONCEPTIONS["causal_mask_off_by_one"].hint
    assert "cannot attend to itself" in hint and "may attend to itself" not in hint


def test_layer_norm_with_var_mean_loses_the_from_scratch_point(tmp_path):
    """The notebook forbids Tensor.var and torch.var_mean in layer_norm; a correct var_mean version loses a point."""
    var = "var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)"
    for name, new in [("var_mean", "var, _ = torch.var_mean(x, dim=dims, correction=0, keepdim=True)"),
                      ("method", "var = x.var(dim=dims, keepdim=True, unbiased=False)")]:
        notebook = edited_solution(tmp_path, "03_add_and_norm", [(var, new)], name=f"{name}.ipynb")
        result = grade_submission(notebook, chapter="03_add_and_norm")
        lost = {e.id: e.max_points - e.points for e in result.exercises if e.points < e.max_points}
        assert lost == {"ex03_layer_norm": 1}, (name, lost)
        named = {c.misconception for e in result.exercises for c in e.checks if c.outcome == "failed"}
        assert named == {"layernorm_library_statistics"}, (name, named)


def test_a_bug_in_the_core_idea_costs_at_least_half_of_the_exercise():
    """CONTRIBUTING's rule, on the catalogue (whose losses test_graders_on_mutants checks by grading)."""
    from autograder.exercises import EXERCISES
    from mutants import CORE_IDEA
    from test_graders_on_mutants import CATALOGUE
    assert CORE_IDEA <= {m.misconception for m in CATALOGUE}
    cheap = {m.misconception: (m.loses, EXERCISES[e].points) for m in CATALOGUE if m.misconception in CORE_IDEA
             for e, lost in m.loses.items() if lost < EXERCISES[e].points / 2}
    assert not cheap, cheap
