"""Reward-model adapters, training from labels and preferences, and save/load, on local models only."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModel

from text_envs.defaults.corpus import reviews
from text_envs.feedback.records import make_record
from text_envs.rewards.classifier import ClassifierRewardModel
from text_envs.rewards.protocol import CallableRewardModel, RewardModel
from text_envs.rewards.trained import (
    CONFIG_FILE,
    RewardModelConfig,
    RewardNetwork,
    TrainedRewardModel,
    backbone_path,
    load_encoder,
    load_reward_model,
    saved_backbone,
)
from text_envs.rewards.training import RewardTrainingConfig, train_reward_model


@pytest.fixture(scope="module")
def review_sets():
    texts = reviews(seed=99, count=160)
    positive = [t for t, s in texts if s == "positive"]
    negative = [t for t, s in texts if s == "negative"]
    return positive, negative


def label_records(pairs):
    return [make_record("label", f"l{i}", "tester", prompt="", completion=t, label=y) for i, (t, y) in enumerate(pairs)]


def comparison_records(pairs):
    records = []
    for i, (better, worse) in enumerate(pairs):
        a_first = i % 2 == 0
        records.append(
            make_record(
                "comparison",
                f"c{i}",
                "tester",
                prompt="the food was",
                completion_a=better if a_first else worse,
                completion_b=worse if a_first else better,
                choice="a" if a_first else "b",
            )
        )
    return records


def test_callable_adapter_batches_and_checks():
    calls = []

    def fn(prompts, completions):
        calls.append(len(completions))
        return [len(c) for c in completions]

    model = CallableRewardModel(fn, batch_size=2)
    assert isinstance(model, RewardModel)
    scores = model(["p"] * 5, ["a", "bb", "ccc", "dddd", "e"])
    assert scores.dtype == np.float32 and scores.tolist() == [1, 2, 3, 4, 1] and calls == [2, 2, 1]
    with pytest.raises(ValueError, match="1 scores for 2 completions"):
        CallableRewardModel(lambda p, c: [1.0])(["p", "p"], ["a", "b"])
    with pytest.raises(ValueError, match="non-finite"):
        CallableRewardModel(lambda p, c: [float("nan")])(["p"], ["a"])


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A small BERT sentiment-style classifier saved locally (random weights: it tests the adapter, not a model)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    directory = tmp_path_factory.mktemp("classifier")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(backbone_path("minilm"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label={0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"},
        label2id={"NEGATIVE": 0, "NEUTRAL": 1, "POSITIVE": 2},
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@torch.no_grad()
def test_hugging_face_classifier_adapter(tiny_classifier):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    completions = ["the food was great.", "terrible service.", "an okay evening overall, i suppose."]
    prompts = ["p1", "p2", "p3"]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier)
    logits = model(**tokenizer(completions, padding=True, return_tensors="pt")).logits
    probability = ClassifierRewardModel(tiny_classifier, label="positive", batch_size=2)(prompts, completions)
    np.testing.assert_allclose(probability, torch.softmax(logits, -1)[:, 2].numpy(), rtol=1e-5)
    logit = ClassifierRewardModel(tiny_classifier, label=0, output="logit")(prompts, completions)
    np.testing.assert_allclose(logit, logits[:, 0].numpy(), rtol=1e-5)
    paired = ClassifierRewardModel(tiny_classifier, include_prompt=True, output="logit")(prompts, completions)
    pair_logits = model(**tokenizer(prompts, completions, padding=True, return_tensors="pt")).logits
    np.testing.assert_allclose(paired, pair_logits[:, 2].numpy(), rtol=1e-5)  # default label: the last class
    with pytest.raises(ValueError, match="not one of the model's labels"):
        ClassifierRewardModel(tiny_classifier, label="toxic")
    with pytest.raises(OSError, match="could not load a sequence classifier"):
        ClassifierRewardModel(tiny_classifier / "missing")


def test_classifier_runs_on_its_device_and_scores_as_before(tiny_classifier):
    prompts, completions = ["a", "b"], ["I loved it.", "I hated it."]
    on_cpu = ClassifierRewardModel(tiny_classifier, label="positive", device="cpu")
    assert on_cpu.device == torch.device("cpu") and {p.device for p in on_cpu.model.parameters()} == {on_cpu.device}
    scores = on_cpu(prompts, completions)
    assert scores.dtype == np.float32 and ((0 < scores) & (scores < 1)).all()
    auto = ClassifierRewardModel(tiny_classifier, label="positive")  # "auto": the CPU here, unless CUDA is present
    assert auto.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    np.testing.assert_allclose(auto(prompts, completions), scores, rtol=1e-5)


def test_bce_training_from_labels_reaches_high_held_out_accuracy(review_sets, tmp_path):
    positive, negative = review_sets
    data = [(t, 1) for t in positive] + [(t, 0) for t in negative]
    rng = np.random.default_rng(0)
    data = [data[i] for i in rng.permutation(len(data))]
    train, test = label_records(data[:110]), label_records(data[110:])
    model = train_reward_model(train, config=RewardTrainingConfig(epochs=60, seed=0), test_labels=test)
    assert model.config.metrics["test_label_accuracy"] >= 0.9
    model.save(tmp_path / "rm")
    reloaded = load_reward_model(tmp_path / "rm")
    texts = [r["completion"] for r in test]
    np.testing.assert_allclose(reloaded([""] * len(texts), texts), model([""] * len(texts), texts), rtol=1e-5)
    saved = json.loads((tmp_path / "rm" / "reward_model.json").read_text())
    assert saved["metrics"]["test_label_accuracy"] == model.config.metrics["test_label_accuracy"]
    assert {p.name for p in (tmp_path / "rm").iterdir()} == {"reward_model.json", "head.safetensors"}


def test_bradley_terry_training_from_preferences(review_sets):
    positive, negative = review_sets
    pairs = list(zip(positive, negative, strict=False))
    train, test = comparison_records(pairs[:50]), comparison_records(pairs[50:])
    model = train_reward_model(comparisons=train, config=RewardTrainingConfig(epochs=60, seed=0), test_comparisons=test)
    assert model.config.metrics["test_comparison_accuracy"] >= 0.9
    centred = train_reward_model(
        comparisons=train, config=RewardTrainingConfig(epochs=60, seed=0, center_coefficient=1.0)
    )
    texts = [t for pair in pairs[50:] for t in pair]
    assert abs(centred([""] * len(texts), texts).mean()) < abs(model([""] * len(texts), texts).mean())
    with_margin = train_reward_model(comparisons=train, config=RewardTrainingConfig(epochs=60, seed=0, margin=2.0))
    gap = with_margin([""] * 2, list(pairs[0]))
    assert gap[0] - gap[1] > 1.0  # the margin pushes preferred and rejected at least ~margin apart


def test_fine_tuning_a_decoder_backbone_saves_and_reloads_it(review_sets, tmp_path):
    from text_envs.defaults import DEFAULT_LM_DIR

    positive, negative = review_sets
    data = label_records([(t, 1) for t in positive[:20]] + [(t, 0) for t in negative[:20]])
    config = RewardTrainingConfig(
        backbone=str(DEFAULT_LM_DIR), fine_tune=True, epochs=2, learning_rate=1e-4, head_hidden=0, batch_size=16
    )
    model = train_reward_model(data, config=config)
    original = AutoModel.from_pretrained(DEFAULT_LM_DIR)
    changed = any(
        not torch.equal(a, b) for a, b in zip(original.parameters(), model.network.encoder.parameters(), strict=True)
    )
    assert changed
    model.save(tmp_path / "tuned")
    assert (tmp_path / "tuned" / "encoder" / "model.safetensors").is_file()
    texts = [r["completion"] for r in data[:6]]
    np.testing.assert_allclose(
        load_reward_model(tmp_path / "tuned")([""] * 6, texts), model([""] * 6, texts), rtol=1e-4
    )


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained reward model"):
        load_reward_model(tmp_path)
    (tmp_path / "reward_model.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="format"):
        load_reward_model(tmp_path)
    with pytest.raises(ValueError, match="no training examples"):
        train_reward_model([], [])


# ---------------------------------------------------------------- what a folder may load


@pytest.fixture(scope="module")
def tiny_backbone_model():
    """A reward model on the embedded 928k GPT-2 (frozen, linear head), to save under any ``backbone`` name."""
    from text_envs.defaults import DEFAULT_LM_DIR

    encoder, tokenizer = load_encoder(str(DEFAULT_LM_DIR))
    torch.manual_seed(0)
    network = RewardNetwork(encoder, head_hidden=0)
    return TrainedRewardModel(network, tokenizer, RewardModelConfig(backbone="unused", head_hidden=0), device="cpu")


def save_naming(model, folder, backbone):
    """``model`` saved in ``folder`` with ``backbone`` written into its ``reward_model.json``."""
    model.save(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "backbone": str(backbone)}))
    return folder


def copy_backbone(destination):
    import shutil

    from text_envs.defaults import DEFAULT_LM_DIR

    return shutil.copytree(DEFAULT_LM_DIR, destination)


SCORED = (["the food was"] * 2, [" great", " awful"])


def test_a_relative_backbone_resolves_inside_the_folder_not_the_current_directory(
    tiny_backbone_model, tmp_path, monkeypatch
):
    folder = save_naming(tiny_backbone_model, tmp_path / "rm", "backbone")
    copy_backbone(folder / "backbone")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "backbone").mkdir(parents=True)  # an empty folder of the same name where the user stands
    monkeypatch.chdir(elsewhere)
    reloaded = load_reward_model(folder, device="cpu")
    np.testing.assert_allclose(reloaded(*SCORED), tiny_backbone_model(*SCORED), rtol=1e-5)
    assert reloaded.network.encoder.name_or_path == str((folder / "backbone").resolve())


@pytest.mark.parametrize("where", ["sibling", "absolute", "symlink", "hub id", "missing"])
def test_a_backbone_outside_the_folder_loads_only_when_allowed(tiny_backbone_model, tmp_path, monkeypatch, where):
    from text_envs.rewards import trained

    outside = copy_backbone(tmp_path / "outside")
    folder = tmp_path / "rm"
    backbone = {
        "sibling": "../outside",
        "absolute": outside.resolve(),
        "symlink": "linked",
        "hub id": "gpt2",
        "missing": "not_here",
    }[where]
    save_naming(tiny_backbone_model, folder, backbone)
    if where == "symlink":
        (folder / "linked").symlink_to(outside, target_is_directory=True)
    loaded = []
    real_load_encoder = trained.load_encoder
    monkeypatch.setattr(
        trained, "load_encoder", lambda source, *args: loaded.append(source) or real_load_encoder(outside, *args)
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"names the backbone '{backbone}'.*allow_external_backbone=True"):
        load_reward_model(folder, device="cpu")
    assert loaded == []  # refused before anything was read or fetched
    reloaded = load_reward_model(folder, device="cpu", allow_external_backbone=True)
    expected = {"hub id": "gpt2", "missing": "not_here"}.get(where, outside.resolve())
    assert loaded == [expected]  # a path resolved against the model folder; a Hub id verbatim
    np.testing.assert_allclose(reloaded(*SCORED), tiny_backbone_model(*SCORED), rtol=1e-5)


def test_installed_and_registered_backbones_load_by_default(monkeypatch, tmp_path):
    from text_envs.defaults import DEFAULT_REWARD_MODEL_DIR
    from text_envs.models import REGISTRY
    from text_envs.rewards import trained

    assert json.loads((DEFAULT_REWARD_MODEL_DIR / CONFIG_FILE).read_text())["backbone"] == "minilm"
    assert load_reward_model(DEFAULT_REWARD_MODEL_DIR, device="cpu")(*SCORED).shape == (2,)
    name = next(iter(REGISTRY))
    assert trained.backbone_source(tmp_path, name) == name  # resolved by text_envs.models, not the folder
    assert trained.backbone_source(tmp_path, "minilm") == "minilm"


def test_the_command_line_loader_passes_the_permission_on(tiny_backbone_model, tmp_path):
    from text_envs_agents.cli.common import load_reward_model_by_name

    folder = save_naming(tiny_backbone_model, tmp_path / "rm", copy_backbone(tmp_path / "outside").resolve())
    with pytest.raises(ValueError, match="--allow-external-backbone"):
        load_reward_model_by_name(str(folder), device="cpu")
    model = load_reward_model_by_name(str(folder), device="cpu", allow_external_backbone=True)
    np.testing.assert_allclose(model(*SCORED), tiny_backbone_model(*SCORED), rtol=1e-5)


def test_training_saves_a_local_backbone_by_its_absolute_path(tmp_path, monkeypatch):
    copy_backbone(tmp_path / "local")
    monkeypatch.chdir(tmp_path)
    assert saved_backbone("local") == str((tmp_path / "local").resolve())
    assert saved_backbone("minilm") == "minilm" and saved_backbone("gpt2") == "gpt2"


def test_shipped_default_reward_model_meets_its_held_out_accuracy():
    from text_envs.defaults import DEFAULT_FEEDBACK_DIR
    from text_envs.feedback.records import read_feedback
    from text_envs.rewards.trained import default_reward_model

    model = default_reward_model()
    labels = [
        record
        for name in ("labels_test.jsonl", "labels_round2_test.jsonl")
        for record in read_feedback(DEFAULT_FEEDBACK_DIR / name).labels()
    ]
    comparisons = read_feedback(DEFAULT_FEEDBACK_DIR / "comparisons_test.jsonl").comparisons()
    label_scores = model([r["prompt"] for r in labels], [r["completion"] for r in labels])
    correct = sum((s > 0) == bool(r["label"]) for s, r in zip(label_scores, labels, strict=True))
    a = model([r["prompt"] for r in comparisons], [r["completion_a"] for r in comparisons])
    b = model([r["prompt"] for r in comparisons], [r["completion_b"] for r in comparisons])
    correct += sum((x > y) == (r["choice"] == "a") for x, y, r in zip(a, b, comparisons, strict=True))
    accuracy = correct / (len(labels) + len(comparisons))
    assert accuracy >= 0.85
    assert accuracy == pytest.approx(model.config.metrics["test_accuracy"], abs=1e-6)


def label_accuracy(model, records) -> float:
    scores = model([r["prompt"] for r in records], [r["completion"] for r in records])
    return float(np.mean([(s > 0) == bool(r["label"]) for s, r in zip(scores, records, strict=True)]))


def test_the_second_round_teaches_the_default_model_the_trained_policies_failures():
    from text_envs.defaults import DEFAULT_FEEDBACK_DIR, ROUND1_REWARD_MODEL_DIR
    from text_envs.feedback.records import read_feedback
    from text_envs.rewards.trained import default_reward_model

    held_out = read_feedback(DEFAULT_FEEDBACK_DIR / "labels_round2_test.jsonl").labels()
    assert held_out and all(r["round"] == 2 and r["simulated"] for r in held_out)
    round1 = load_reward_model(ROUND1_REWARD_MODEL_DIR, device="cpu")
    assert label_accuracy(default_reward_model("cpu"), held_out) >= 0.8
    assert label_accuracy(round1, held_out) < 0.7  # the round-1 model pays for the policies' garbled praise


def test_every_reward_model_speaks_the_one_protocol():
    from text_envs.rewards import HumanReward, lexicon_sentiment_reward

    assert isinstance(HumanReward(input_fn=lambda q: "1", output_fn=lambda s: None), RewardModel)
    assert isinstance(lexicon_sentiment_reward, RewardModel)  # a plain function is one
    assert isinstance(CallableRewardModel(lambda p, c: [0.0] * len(c)), RewardModel)
    assert not isinstance("not callable", RewardModel)


@pytest.mark.parametrize(
    "returned, error, match",
    [
        (None, TypeError, "returned NoneType"),
        ("0.5", TypeError, "returned str"),
        ({"score": 1.0}, TypeError, "returned dict"),
        (torch.ones(1, requires_grad=True), TypeError, "requires gradients"),
        ([[1.0], ["x"]], TypeError, "not 1 numbers"),
        ([1.0, 2.0], ValueError, "2 scores for 1 completions"),
        ([float("inf")], ValueError, "non-finite"),
    ],
)
def test_the_one_score_check_says_what_is_wrong(returned, error, match):
    from text_envs.rewards import check_scores

    with pytest.raises(error, match=match):
        check_scores(returned, 1, "my reward")
    assert check_scores(torch.tensor([0.25]), 1, "my reward").tolist() == [0.25]
