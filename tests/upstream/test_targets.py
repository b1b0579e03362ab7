"""Which field caps a reply: the one the target model's family takes."""
import pytest

from app.upstream.targets import reply_cap_field


@pytest.mark.parametrize("model, field", [
    ("o1", "max_completion_tokens"), ("o1-mini", "max_completion_tokens"), ("o3", "max_completion_tokens"),
    ("o4-mini", "max_completion_tokens"), ("gpt-5", "max_completion_tokens"), ("gpt-5-nano", "max_completion_tokens"),
    ("openai/o3-mini", "max_completion_tokens"), ("O3-MINI", "max_completion_tokens"),
    ("gpt-4o", "max_tokens"), ("gpt-4.1-mini", "max_tokens"), ("omni-moderation", "max_tokens"),
    ("qwen2.5:7b", "max_tokens"), ("llama3.1", "max_tokens"), ("", "max_tokens"),
])
def test_which_field_caps_a_reply(model, field):
    assert reply_cap_field(model) == field
