"""Reward-shaping terms and transforms over a batch of transitions, stacked by :class:`RewardShaping`.

A **term** adds a reward to every transition (``KLTerm``, ``LengthTerm``, ``MissingEOSTerm``,
``CommonNgramTerm``, ``DenseTerm``, ``PotentialTerm``); a **transform** maps the running total (``ClipTransform``,
``ReturnStdScaling``). Each sees one step of a batch of episodes at a time (:class:`Transitions`), so
the same objects serve every path:

- a single env: the per-step wrappers of :mod:`text_envs.shaping.wrappers` (``KLPenalty``,
  ``LengthPenalty``, ...) each hold one term and call it with a batch of one;
- a whole batch of finished completions: :meth:`RewardShaping.shape_completions`, which TextPPO calls
  once per rollout with the log-probs of one teacher-forced reference pass, walking the token
  positions with all rows at once.

Both give the same rewards for the same completions, log-probs and statistics. Stateful pieces update
between batches, not inside one: the KL controller in :meth:`RewardShaping.end_batch` (a single env's
wrapper calls it when an episode ends, TextPPO once per rollout batch), the return statistics of
:class:`ReturnStdScaling` when an episode ends, with each episode scaled by the divisor it started with.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from text_envs.shaping.checks import check_finite_rewards, finite_number
from text_envs.shaping.kl import KL_ESTIMATORS, FixedKLController, KLController, kl_estimate
from text_envs.shaping.reward_components import NOT_ADDITIVE

MISSING_POLICY_LOGPROB = ("cross_entropy", "zero", "error")

TokenScorer = Callable[[str, str], float]
"""``(prompt, completion_so_far) -> float``: a score of a partial completion."""
Potential = Callable[[str, str], float]
"""``(prompt, completion_so_far) -> float``: the potential Φ of a state."""


@dataclass(frozen=True)
class Transitions:
    """One step of a batch of ``B`` episodes: what every shaping term and transform reads.

    - ``episodes``: ``(B,)`` ids, the same for every step of one episode (a row of the batch, an env index).
    - ``prompts``: the ``B`` prompts; ``completion_ids``: the ids generated so far, this step's included.
    - ``terminated``, ``truncated``: ``(B,)`` bools, as the env returned them.
    - ``policy_logprobs``, ``ref_logprobs``: ``(B,)`` ``log π(a_t|s_t)`` and ``log π_ref(a_t|s_t)`` in
      nats, ``nan`` where unknown, or ``None`` when no row has them.
    - ``decode(ids, stopped)``: the completion text, as the env decodes it (without a final stop token).
    """

    episodes: np.ndarray
    prompts: Sequence[str]
    completion_ids: Sequence[np.ndarray]
    terminated: np.ndarray
    truncated: np.ndarray
    decode: Callable[[np.ndarray, bool], str]
    policy_logprobs: np.ndarray | None = None
    ref_logprobs: np.ndarray | None = None

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated

    @property
    def lengths(self) -> np.ndarray:
        """Tokens generated so far, this step's included (a stop token counts)."""
        return np.array([len(ids) for ids in self.completion_ids], dtype=np.int64)

    def texts(self) -> list[str]:
        """Each row's completion so far, decoded as one sequence (without the stop token that ended it)."""
        return [self.decode(ids, bool(stop)) for ids, stop in zip(self.completion_ids, self.terminated, strict=True)]


Records = dict[str, np.ndarray]
"""Per-row values a term reports beside its reward (e.g. ``kl``), ``(B,)`` arrays keyed by info name."""


class ShapingTerm(ABC):
    """Adds ``(B,)`` rewards to a step; ``name`` is its key in ``info["reward_components"]``.

    Subclass it for a term of your own: :meth:`__call__` gets a :class:`Transitions`; :meth:`start` and
    :meth:`end_batch` are for terms that keep per-episode or adaptive state.
    """

    name: str

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:  # noqa: B027 (an optional hook)
        """Episodes ``episodes`` begin with these prompts."""

    @abstractmethod
    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        """The term for each row, and what it reports beside it."""

    def end_batch(self) -> None:  # noqa: B027 (an optional hook)
        """Between batches: adapt what adapts (the KL coefficient)."""


class RewardTransform(ABC):
    """Maps the running total ``(B,)`` of everything before it; ``name`` records what it did."""

    name: str

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:  # noqa: B027 (an optional hook)
        """Episodes ``episodes`` begin with these prompts."""

    @abstractmethod
    def __call__(self, step: Transitions, rewards: np.ndarray) -> tuple[np.ndarray, Records]:
        """The transformed rewards, and what it reports beside them."""

    def end_batch(self) -> None:  # noqa: B027 (an optional hook)
        """Between batches."""


class KLTerm(ShapingTerm):
    """``−β·kl_t`` per token, ``kl_t`` the :func:`~text_envs.shaping.kl.kl_estimate` of the sampled token (nats).

    Rows without a policy log-prob follow ``missing_policy_logprob``: ``"cross_entropy"`` (``kl_t :=
    −log π_ref``), ``"zero"`` or ``"error"`` (see :class:`~text_envs.shaping.wrappers.KLPenalty`). Each
    episode's KL (the sum of its ``kl_t``, nats per sequence) is kept until :meth:`end_batch` hands the
    batch's mean to the controller: ``controller.update(mean, episodes)``.

    Records: ``kl``, ``ref_logprob``, ``kl_beta`` on every step, ``episode_kl`` on an episode's last.
    """

    name = "kl_penalty"

    def __init__(
        self, beta: float | KLController = 0.05, estimator: str = "k1", missing_policy_logprob: str = "cross_entropy"
    ):
        if estimator not in KL_ESTIMATORS:
            raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
        if missing_policy_logprob not in MISSING_POLICY_LOGPROB:
            raise ValueError(
                f"missing_policy_logprob must be one of {MISSING_POLICY_LOGPROB}, got {missing_policy_logprob!r}"
            )
        if isinstance(beta, numbers.Real):
            self.kl_controller: KLController = FixedKLController(beta)
        elif hasattr(beta, "value") and callable(getattr(beta, "update", None)):
            self.kl_controller = beta
        else:
            raise TypeError(f"beta must be a number or a KL controller (.value, .update(kl, n_steps)), got {beta!r}")
        self.estimator = estimator
        self.missing_policy_logprob = missing_policy_logprob
        self._running: dict[int, float] = {}
        self._finished: list[float] = []

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:
        for episode in episodes.tolist():
            self._running[episode] = 0.0

    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        if step.ref_logprobs is None:
            raise ValueError("KLTerm needs the reference log-probs of the sampled tokens (Transitions.ref_logprobs)")
        ref = np.asarray(step.ref_logprobs)  # in the caller's precision: TextPPO's float32 stays float32
        policy = np.full_like(ref, np.nan) if step.policy_logprobs is None else np.asarray(step.policy_logprobs)
        supplied = np.isfinite(policy)
        if not supplied.all() and self.missing_policy_logprob == "error":
            raise RuntimeError(
                "no policy log-prob for this step: call env.get_wrapper_attr('set_policy_logprob')(logprob) "
                "before each step, or choose missing_policy_logprob='cross_entropy' or 'zero'"
            )
        missing = -ref if self.missing_policy_logprob == "cross_entropy" else np.zeros_like(ref)
        kl = np.where(supplied, kl_estimate(np.where(supplied, policy, ref), ref, self.estimator), missing)
        beta = self.kl_controller.value
        records: Records = {"kl": kl, "ref_logprob": ref, "kl_beta": np.full_like(kl, beta)}
        episode_kl = np.zeros_like(kl)  # recorded on an episode's last step
        for row, episode in enumerate(step.episodes.tolist()):
            self._running[episode] = self._running.get(episode, 0.0) + float(kl[row])
            if step.done[row]:
                episode_kl[row] = self._running.pop(episode)
                self._finished.append(float(episode_kl[row]))
        if step.done.any():
            records["episode_kl"] = episode_kl
        return -beta * kl, records

    def end_batch(self) -> None:
        """Update the controller with the mean KL of the episodes finished since the last call."""
        if self._finished:
            self.kl_controller.update(float(np.mean(self._finished)), len(self._finished))
            self._finished = []


class LengthTerm(ShapingTerm):
    """``−coef·max(0, n − target_length)`` on an episode's last step, ``n`` its generated tokens (stop token
    included); 0 before. Per sequence, ``coef`` in reward units per token over the target."""

    name = "length_penalty"

    def __init__(self, coef: float, target_length: int = 0):
        self.coef = finite_number("coef", coef, minimum=0.0)
        if isinstance(target_length, bool) or not isinstance(target_length, numbers.Integral) or target_length < 0:
            raise ValueError(f"target_length must be an integer >= 0, got {target_length!r}")
        self.target_length = int(target_length)

    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        excess = np.maximum(0, step.lengths - self.target_length)
        return np.where(step.done, -self.coef * excess, 0.0), {}


class MissingEOSTerm(ShapingTerm):
    """``−penalty`` on a final step that was truncated (no EOS or stop token), 0 otherwise (per sequence)."""

    name = "missing_eos_penalty"

    def __init__(self, penalty: float):
        self.penalty = finite_number("penalty", penalty, minimum=0.0)

    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        return np.where(step.truncated, -self.penalty, 0.0), {}


class CommonNgramTerm(ShapingTerm):
    """``−coef·m`` on an episode's last step, ``m`` the mean over the completion's word ``n``-grams of the share of
    the last ``window`` finished completions that hold that n-gram; 0 before (per sequence).

    A diversity term: RL against a reward model collapses onto a few high-scoring phrasings, and this makes a
    phrasing cost what share of recent completions already use it. Words are the lower-cased, whitespace-split
    completion (as :func:`text_envs.judges.distinct_n` counts them); a completion with fewer than ``n`` words
    pays nothing. The window holds earlier batches only: completions finishing in one batch are added at
    :meth:`end_batch` (a single env's wrapper calls it when each episode ends), and it starts empty.
    """

    name = "common_ngram_penalty"

    def __init__(self, coef: float, n: int = 2, window: int = 256):
        self.coef = finite_number("coef", coef, minimum=0.0)
        for name, value in (("n", n), ("window", window)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.n, self.window = int(n), int(window)
        self._recent: deque[frozenset[tuple[str, ...]]] = deque()
        self._holding: Counter[tuple[str, ...]] = Counter()  # n-gram -> completions of the window holding it
        self._finished: list[frozenset[tuple[str, ...]]] = []

    def ngrams(self, text: str) -> frozenset[tuple[str, ...]]:
        words = text.lower().split()
        return frozenset(tuple(words[i : i + self.n]) for i in range(len(words) - self.n + 1))

    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        rewards = np.zeros(len(step.episodes))
        done = np.flatnonzero(step.done)
        if done.size == 0:
            return rewards, {}
        for row in done.tolist():
            grams = self.ngrams(step.decode(step.completion_ids[row], bool(step.terminated[row])))
            if grams and self._recent:
                shares = [self._holding[gram] / len(self._recent) for gram in grams]
                rewards[row] = -self.coef * float(np.mean(shares))
            self._finished.append(grams)
        return rewards, {}

    def end_batch(self) -> None:
        for grams in self._finished:
            self._recent.append(grams)
            self._holding.update(grams)
            if len(self._recent) > self.window:
                self._holding -= Counter(self._recent.popleft())  # drops the n-grams no completion holds now
        self._finished.clear()


class DenseTerm(ShapingTerm):
    """``coef·v_t`` per token, ``v_t = token_scorer(prompt, completion so far)``; with ``difference``,
    ``coef·(v_t − v_{t−1})`` from ``v_{−1} = token_scorer(prompt, "")``, so an episode's terms telescope.

    Records: ``token_score`` (``v_t``).
    """

    name = "dense"

    def __init__(self, token_scorer: TokenScorer, coef: float = 1.0, difference: bool = False):
        if not callable(token_scorer):
            raise TypeError(f"token_scorer must be callable (prompt, completion_so_far) -> float, got {token_scorer!r}")
        self.token_scorer = token_scorer
        self.coef = finite_number("coef", coef)
        self.difference = bool(difference)
        self._previous: dict[int, float] = {}

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:
        for episode, prompt in zip(episodes.tolist(), prompts, strict=True):
            self._previous[episode] = _score(self.token_scorer, prompt, "") if self.difference else 0.0

    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        scores = np.array([_score(self.token_scorer, p, c) for p, c in zip(step.prompts, step.texts(), strict=True)])
        previous = np.array([self._previous.get(e, 0.0) for e in step.episodes.tolist()])
        for episode, score, done in zip(step.episodes.tolist(), scores.tolist(), step.done.tolist(), strict=True):
            if done:
                self._previous.pop(episode, None)
            else:
                self._previous[episode] = score
        return self.coef * (scores - previous if self.difference else scores), {"token_score": scores}


class PotentialTerm(ShapingTerm):
    """``γ·Φ(s_{t+1}) − Φ(s_t)`` per token (Ng, Harada & Russell 1999), ``Φ(s_0) = potential(prompt, "")`` and
    ``Φ := 0`` after an episode's last step, so the optimal policy is unchanged whatever Φ is."""

    name = "potential"

    def __init__(self, potential: Potential, gamma: float = 1.0):
        if not callable(potential):
            raise TypeError(f"potential must be callable (prompt, completion_so_far) -> float, got {potential!r}")
        self.potential = potential
        self.gamma = finite_number("gamma", gamma, minimum=0.0)
        if self.gamma > 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self._current: dict[int, float] = {}

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:
        for episode, prompt in zip(episodes.tolist(), prompts, strict=True):
            self._current[episode] = _score(self.potential, prompt, "")

    def __call__(self, step: Transitions) -> tuple[np.ndarray, Records]:
        terms = np.zeros(len(step.episodes))
        for row, episode in enumerate(step.episodes.tolist()):
            following = 0.0
            if not step.done[row]:
                text = step.decode(step.completion_ids[row], False)
                following = _score(self.potential, step.prompts[row], text)
            terms[row] = self.gamma * following - self._current.get(episode, 0.0)
            if step.done[row]:
                self._current.pop(episode, None)
            else:
                self._current[episode] = following
        return terms, {}


def term_rewards(term: ShapingTerm, step: Transitions) -> tuple[np.ndarray, Records]:
    """``term(step)``, refusing a non-finite reward with an error that names the term."""
    values, records = term(step)
    check_finite_rewards(f"the shaping term {type(term).__name__}", step.episodes, values)
    return values, records


def _received_by(transform: RewardTransform) -> str:
    return f"the reward that {type(transform).__name__} received (the score plus the terms below it)"


def _score(fn: Callable[[str, str], float], prompt: str, completion: str) -> float:
    value = float(fn(prompt, completion))
    if not math.isfinite(value):
        raise ValueError(f"{fn!r} returned {value} for completion {completion!r}; shaping scores must be finite")
    return value


class ClipTransform(RewardTransform):
    """Clip the running total to ``[min_reward, max_reward]`` (either may be ``None``: open), as Gymnasium's
    ``ClipReward``. Records ``clipped_by`` (returned minus received), so the terms still add up."""

    name = "clipped_by"

    def __init__(self, min_reward: float | None = None, max_reward: float | None = None):
        if min_reward is None and max_reward is None:
            raise ValueError("give min_reward, max_reward or both")
        low = -math.inf if min_reward is None else finite_number("min_reward", min_reward)
        high = math.inf if max_reward is None else finite_number("max_reward", max_reward)
        if low > high:
            raise ValueError(f"min_reward must not exceed max_reward, got min_reward={low}, max_reward={high}")
        self.min_reward, self.max_reward = low, high

    def __call__(self, step: Transitions, rewards: np.ndarray) -> tuple[np.ndarray, Records]:
        check_finite_rewards(_received_by(self), step.episodes, rewards)  # np.clip would pass NaN through
        clipped = np.clip(rewards, self.min_reward, self.max_reward)
        return clipped, {self.name: clipped - rewards}


class ReturnStdScaling(RewardTransform):
    """Divide every reward by the running standard deviation of the episode return ``G = Σ_t γ^t r_t``.

    Unlike Gymnasium's ``NormalizeReward`` (a per-step running discounted return, γ = 0.99), the
    statistics are episode returns, updated (Welford) once per episode at its end, and an episode is
    scaled throughout by the divisor it started with: every token's reward and the episode's return
    share one factor. The mean is not subtracted: a constant added to every token would make longer or
    shorter completions pay. The divisor is 1 until two episodes have ended.

    Records ``normalised_reward`` (the reward returned; not an additive term) and ``reward_std``.
    """

    name = "normalised_reward"

    def __init__(self, gamma: float = 1.0, epsilon: float = 1e-8, update_statistics: bool = True):
        self.gamma = finite_number("gamma", gamma, minimum=0.0)
        if self.gamma > 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.epsilon = finite_number("epsilon", epsilon, positive=True)
        self.update_statistics = bool(update_statistics)
        self.return_count = 0
        self.return_mean = 0.0
        self._return_m2 = 0.0
        self._episodes: dict[int, list[float]] = {}  # episode -> [divisor, return so far, discount]

    @property
    def return_std(self) -> float:
        """The divisor for an episode starting now: ``sqrt(var(G) + epsilon)``, 1.0 before the second return."""
        if self.return_count < 2:
            return 1.0
        return math.sqrt(self._return_m2 / self.return_count + self.epsilon)

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:
        for episode in episodes.tolist():
            self._episodes[episode] = [self.return_std, 0.0, 1.0]

    def __call__(self, step: Transitions, rewards: np.ndarray) -> tuple[np.ndarray, Records]:
        check_finite_rewards(_received_by(self), step.episodes, rewards)  # before any statistic changes
        divisors = np.empty(len(rewards))
        for row, episode in enumerate(step.episodes.tolist()):
            state = self._episodes.setdefault(episode, [self.return_std, 0.0, 1.0])
            state[1] += state[2] * float(rewards[row])
            state[2] *= self.gamma
            divisors[row] = state[0]
            if step.done[row]:
                del self._episodes[episode]
                if self.update_statistics:
                    self._update(state[1])
        scaled = rewards / divisors
        return scaled, {self.name: scaled, "reward_std": divisors}

    def _update(self, episode_return: float) -> None:
        self.return_count += 1
        delta = episode_return - self.return_mean
        self.return_mean += delta / self.return_count
        self._return_m2 += delta * (episode_return - self.return_mean)


ShapingStep = ShapingTerm | RewardTransform


@dataclass
class ShapedRewards:
    """Rewards of a batch of completions, ``(B, T)`` over token positions (0 where a row has no token)."""

    rewards: np.ndarray
    components: dict[str, np.ndarray]
    """each term's and transform's record by name (``"score"`` included), ``(B, T)``"""
    records: dict[str, np.ndarray]
    """what the terms reported beside their rewards (``kl``, ``ref_logprob``, ...), ``(B, T)``, 0 where no token"""


class RewardShaping:
    """An ordered stack of shaping terms and transforms: terms add to the running total, transforms map it.

    ``RewardShaping([KLTerm(0.1), LengthTerm(0.01), ClipTransform(-5, 5)])`` gives the same rewards as the
    single env wrapped ``ClipReward(LengthPenalty(KLPenalty(env, beta=0.1), 0.01), -5, 5)``.
    """

    def __init__(self, steps: Sequence[ShapingStep] = ()):
        for item in steps:
            if not isinstance(item, (ShapingTerm, RewardTransform)):
                raise TypeError(f"a shaping step must be a ShapingTerm or RewardTransform, got {item!r}")
        self.steps = list(steps)

    def find(self, kind: type) -> list:
        """The steps of type ``kind`` (e.g. ``KLTerm``), in order."""
        return [item for item in self.steps if isinstance(item, kind)]

    def start(self, episodes: np.ndarray, prompts: Sequence[str]) -> None:
        for item in self.steps:
            item.start(episodes, prompts)

    def __call__(self, step: Transitions, scores: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], Records]:
        """One step's shaped rewards ``(B,)`` from env rewards ``scores``; each piece's entry; the records."""
        total = np.array(scores, dtype=np.result_type(np.asarray(scores).dtype, np.float32))
        components: dict[str, np.ndarray] = {"score": total.copy()}
        records: Records = {}
        for item in self.steps:
            if isinstance(item, RewardTransform):
                total, extra = item(step, total)
            else:
                values, extra = term_rewards(item, step)
                total = total + values
                components[item.name] = components.get(item.name, 0.0) + values
            for key, value in extra.items():
                if key != item.name:
                    records[key] = value
                elif key in NOT_ADDITIVE:
                    components[key] = value
                else:
                    components[key] = components.get(key, 0.0) + value
        return total, components, records

    def end_batch(self) -> None:
        for item in self.steps:
            item.end_batch()

    def shape_completions(
        self,
        prompts: Sequence[str],
        completion_ids: np.ndarray,
        lengths: np.ndarray,
        stopped: np.ndarray,
        scores: np.ndarray,
        decode: Callable[[np.ndarray, bool], str],
        policy_logprobs: np.ndarray | None = None,
        ref_logprobs: np.ndarray | None = None,
    ) -> ShapedRewards:
        """Shape a batch of finished completions at once, as if each had been stepped through the wrappers.

        ``completion_ids`` ``(B, T)`` (each row's first ``lengths[i]`` ids are real, the stop token
        included when ``stopped[i]``), ``scores`` ``(B,)`` the reward model's; log-probs ``(B, T)``.
        Walks the token positions with every row that has a token there; then :meth:`end_batch`.
        """
        n, width = completion_ids.shape
        rewards = np.zeros((n, width))
        components: dict[str, np.ndarray] = {}
        records: dict[str, np.ndarray] = {}
        episodes = np.arange(n)
        self.start(episodes, prompts)
        for t in range(int(lengths.max(initial=0))):
            rows = np.flatnonzero(lengths > t)
            last = lengths[rows] == t + 1
            step = Transitions(
                episodes=rows,
                prompts=[prompts[i] for i in rows],
                completion_ids=[completion_ids[i, : t + 1] for i in rows],
                terminated=last & stopped[rows],
                truncated=last & ~stopped[rows],
                decode=decode,
                policy_logprobs=None if policy_logprobs is None else policy_logprobs[rows, t],
                ref_logprobs=None if ref_logprobs is None else ref_logprobs[rows, t],
            )
            total, step_components, step_records = self(step, np.where(last, scores[rows], 0.0))
            rewards[rows, t] = total
            for target, source in ((components, step_components), (records, step_records)):
                for key, values in source.items():
                    target.setdefault(key, np.zeros((n, width)))[rows, t] = values
        self.end_batch()
        return ShapedRewards(rewards, components, records)
