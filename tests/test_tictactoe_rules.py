"""The rule tables against facts of Tic-Tac-Toe that are known independently of this code."""

from functools import cache

import numpy as np

from text_envs.tictactoe import rules


@cache
def outcomes_of_all_games(state: int) -> tuple[int, int, int]:
    """(X wins, O wins, draws) over every game that continues from ``state``."""
    if rules.IS_TERMINAL[state]:
        winner = rules.WINNER[state]
        return (int(winner == rules.X), int(winner == rules.O), int(winner == rules.NO_WINNER))
    totals = np.zeros(3, dtype=np.int64)
    for move in rules.LEGAL_MOVE_LISTS[state]:
        totals += outcomes_of_all_games(rules.play(state, move))
    return tuple(int(t) for t in totals)


def reachable_states() -> set[int]:
    seen, frontier = {rules.EMPTY_BOARD}, [rules.EMPTY_BOARD]
    while frontier:
        state = frontier.pop()
        for move in rules.LEGAL_MOVE_LISTS[state]:
            child = rules.play(state, move)
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    return seen


def nonterminal_reachable_states() -> np.ndarray:
    return np.array(sorted(s for s in reachable_states() if not rules.IS_TERMINAL[s]))


def test_game_counts_match_the_known_totals():
    # 255,168 games: X wins 131,184, O wins 77,904, 46,080 draws.
    assert outcomes_of_all_games(rules.EMPTY_BOARD) == (131_184, 77_904, 46_080)


def test_position_counts_match_the_known_totals():
    states = reachable_states()
    assert len(states) == 5_478
    assert sum(bool(rules.IS_TERMINAL[s]) for s in states) == 958
    assert all(rules.IS_REACHABLE[s] for s in states)


def test_perfect_play_draws():
    assert rules.GAME_VALUE == 0
    assert (rules.MOVE_VALUES[rules.EMPTY_BOARD] == 0).all()  # every opening move holds the draw


def test_minimax_prefers_an_immediate_win_over_a_slower_one():
    state = rules.EMPTY_BOARD
    for move in (0, 3, 1, 6, 4, 5):  # X: 0, 1, 4; O: 3, 5, 6; X to move
        state = rules.play(state, move)
    winning_now = {m for m in rules.LEGAL_MOVE_LISTS[state] if rules.WINNER[rules.play(state, m)] == rules.X}
    assert winning_now == {2, 7, 8}
    assert set(rules.OPTIMAL_MOVE_LISTS[state]) == winning_now


def test_minimax_blocks_a_threat():
    state = rules.EMPTY_BOARD
    for move in (0, 4, 1):  # X threatens the top row; O must block at 2
        state = rules.play(state, move)
    assert rules.OPTIMAL_MOVE_LISTS[state] == (2,)


def test_optimal_moves_never_lose_against_any_reply():
    """Following any optimal move, against every possible reply, the optimal player never loses."""

    def never_loses(state: int, optimal_player: int) -> bool:
        if rules.IS_TERMINAL[state]:
            return rules.WINNER[state] in (rules.NO_WINNER, optimal_player)
        own_turn = rules.MARK_TO_MOVE[state] == optimal_player
        moves = rules.OPTIMAL_MOVE_LISTS[state] if own_turn else rules.LEGAL_MOVE_LISTS[state]
        return all(never_loses(rules.play(state, m), optimal_player) for m in moves)

    assert never_loses(rules.EMPTY_BOARD, rules.X)
    assert never_loses(rules.EMPTY_BOARD, rules.O)


def test_state_from_observation_round_trips_every_reachable_board():
    states = nonterminal_reachable_states()
    x_to_move = rules.MARK_TO_MOVE[states] == rules.X
    observations = np.where(x_to_move[:, None], rules.OBSERVATION_FOR_X[states], rules.OBSERVATION_FOR_O[states])
    np.testing.assert_array_equal(rules.state_from_observation(observations), states)


def test_nth_allowed_moves_matches_the_scalar_pick():
    rng = np.random.default_rng(0)
    states = rng.choice(nonterminal_reachable_states(), 500)
    uniforms = rng.random(500)
    picked = rules.nth_allowed_moves(rules.LEGAL_MOVES[states], uniforms)
    expected = [
        rules.LEGAL_MOVE_LISTS[s][int(u * len(rules.LEGAL_MOVE_LISTS[s]))]
        for s, u in zip(states, uniforms, strict=True)
    ]
    np.testing.assert_array_equal(picked, expected)
