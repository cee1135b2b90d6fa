"""kernel.scoring with the real default model: likelihoods after cached prefixes."""
import pytest

from kernel import llm
from kernel.home import CONF_DIR, read_toml
from kernel.scoring import ChannelScorer, ScoringError


@pytest.fixture
def scorer():
    config = read_toml(CONF_DIR / "batos.toml", "configuration")
    model = llm.LlamaModel(llm.ModelSpec.from_config("steward-smollm2", config["models"]))
    return ChannelScorer(model.llama, max_prefixes=3, n_batch=64)


@pytest.mark.real_model
def test_a_text_is_likelier_after_the_prefix_it_belongs_to(scorer):
    prefixes = ["A list of fruits:\n- ", "A list of programming languages:\n- "]
    fruit, language = scorer.score(prefixes, "banana")
    assert fruit > language
    assert scorer.score(list(reversed(prefixes)), "Python")[0] > \
        scorer.score(list(reversed(prefixes)), "Python")[1]


@pytest.mark.real_model
def test_cached_prefixes_give_the_same_scores_as_fresh_ones(scorer):
    prefixes = ["Colours:\n- ", "Animals:\n- ", "Cities:\n- "]
    first = scorer.score(prefixes, "a red fox in Paris")
    again = scorer.score(prefixes, "a red fox in Paris")
    fresh = ChannelScorer(scorer.llama, max_prefixes=3, n_batch=64).score(
        prefixes, "a red fox in Paris")
    assert first == pytest.approx(again, abs=1e-3) and first == pytest.approx(fresh, abs=1e-2)


@pytest.mark.real_model
def test_prefixes_decoded_together_score_as_prefixes_decoded_alone(scorer):
    """`score` decodes what its prefixes lack in shared batches (here 64 tokens: the three
    prefixes need more, so a batch ends inside one of them); other batch shapes round
    differently in llama.cpp's kernels (some hundredths of a nat), nothing more."""
    prefixes = ["def method(self):\n    return self.width * self.height\n" * 2 + f"# {n}"
                for n in ("area", "perimeter", "volume")]
    together = scorer.score(prefixes, " area")
    alone = [ChannelScorer(scorer.llama, max_prefixes=3, n_batch=64).score([p], " area")[0]
             for p in prefixes]
    assert together == pytest.approx(alone, abs=0.1)


@pytest.mark.real_model
def test_too_many_options_is_a_clear_error_and_a_long_text_counts_its_start(scorer):
    with pytest.raises(ScoringError, match="at most 3 options"):
        scorer.score(["a", "b", "c", "d"], "x")
    start = scorer.score(["Words:\n- ", "Numbers:\n- "], "word " * 64)
    assert scorer.score(["Words:\n- ", "Numbers:\n- "], "word " * 500) == \
        pytest.approx(start, abs=1e-2)


@pytest.mark.real_model
def test_many_texts_after_one_prefix_score_as_each_would_alone(scorer):
    prefix = "def area(self):\n"
    texts = ["    return self.width * self.height", "    return 1", "    pass",
             "    return self.width + self.height + self.depth", "    x"]
    together = scorer.score_texts(prefix, texts)
    alone = [scorer.score([prefix], text)[0] for text in texts]
    assert together == pytest.approx(alone, abs=0.1)
    assert together[0] > together[3]


@pytest.mark.real_model
def test_a_prefix_that_shares_its_start_with_the_last_scores_as_a_fresh_one(scorer):
    """`score_texts` keeps its prefix apart from `score`'s and decodes only what a new prefix
    does not share with the last (a writer's prompt after its fixed instructions)."""
    start = "Write one Python method.\n" * 20  # longer than n_batch: decoded in chunks
    texts = ["    return self.width * self.height", "    return self.radius * 2"]
    scorer.score_texts(start + "Slots: width = 3, height = 4\ndef area(self):\n", texts)
    scorer.score(["Colours:\n- ", "Animals:\n- "], "a red fox")  # leaves that prefix alone
    second = start + "Slots: radius = 2\ndef diameter(self):\n"
    reused = scorer.score_texts(second, texts)
    fresh = ChannelScorer(scorer.llama, max_prefixes=3, n_batch=64).score_texts(second, texts)
    # decoded in other batches the quantized sums differ a little (measured: up to 0.6 nats
    # between fresh scorers of n_batch 64 and 512); a misplaced token costs several nats
    assert reused == pytest.approx(fresh, abs=1.0) and reused[1] > reused[0]
    assert scorer.score_texts(second, texts) == pytest.approx(reused, abs=1e-3)
