"""TextPPO checkpoints with shaping steps beside the KL term: recorded by name, passed again to load."""

import json

import pytest

from text_envs import TextGenerationVectorEnv
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = TextPPOConfig(seed=2, ppo_epochs=1, minibatch_size=4)


def make_env():
    return TextGenerationVectorEnv(4, reward_model=lexicon_sentiment_reward, max_new_tokens=6)


def test_extra_shaping_steps_are_recorded_and_must_be_passed_again(tmp_path):
    from text_envs.shaping import LengthTerm, MissingEOSTerm

    TextPPO(make_env(), config=CONFIG, shaping=[LengthTerm(0.01)]).save(tmp_path)
    assert json.loads((tmp_path / "trainer_state.json").read_text())["shaping"] == ["LengthTerm"]
    with pytest.raises(ValueError, match=r"\['LengthTerm'\] .*pass them again as shaping="):
        TextPPO.load(tmp_path, env=make_env())
    with pytest.raises(ValueError, match=r"given \['MissingEOSTerm'\]"):
        TextPPO.load(tmp_path, env=make_env(), shaping=[MissingEOSTerm(1.0)])
    assert len(TextPPO.load(tmp_path, env=make_env(), shaping=[LengthTerm(0.01)]).shaping.steps) == 2


def test_the_kl_term_comes_from_the_config_only():
    from text_envs.shaping import KLTerm

    with pytest.raises(ValueError, match="leave KLTerm out of shaping"):
        TextPPO(make_env(), config=CONFIG, shaping=[KLTerm(0.1)])
