"""``cvxnn.fit(..., search=...)``: column generation inside fit, seeded by a nonconvex run, warm starts,
interruption and progress.

Ground truth on small data: the optimum over all enumerated patterns q*(𝒫) (THEORY §1.3, §2.4).
"""

from __future__ import annotations

import numpy as np
import pytest

import cvxnn
from cvxnn import NonconvexInit, SearchOptions
from cvxnn.duality import max_dual_constraint
from cvxnn.network import convex_from_network, convex_prediction
from cvxnn.nonconvex import train_nonconvex
from cvxnn.pattern_search import search_violations
from planted import planted_two_neuron

BETA = 0.1


@pytest.mark.parametrize("seed", range(6))
def test_search_reaches_the_enumerated_optimum(seed):
    """n = 15, d = 3 (212 patterns): from 5 sampled patterns the default search ends at q*(𝒫)."""
    X, y = planted_two_neuron(seed)
    opt = cvxnn.fit(X, y, BETA, patterns="all")
    res = cvxnn.fit(X, y, BETA, patterns=5, seed=seed, search=True)
    report = res.search
    assert report.stopped == "converged" and report.converged
    assert res.objective == pytest.approx(opt.objective, rel=1e-7)
    assert len(res.patterns) < len(opt.patterns) and not res.patterns.complete
    assert not res.certified_global  # a search that finds nothing proves nothing...
    assert cvxnn.certify(res.network, X, y, BETA).globally_optimal is True  # ...enumeration does
    assert np.all(np.diff(report.objectives) <= 1e-9 * report.objectives[0])  # never increases
    assert report.rounds[0].n_patterns <= 5 and report.rounds[-1].n_added == 0
    assert report.max_violation == report.rounds[-1].max_violation <= 1 + 1e-6
    assert report.n_projections == sum(r.n_projections for r in report.rounds) > 0
    assert report.n_screened > report.n_projections and report.n_starts > 0


def _classes_and_outputs(loss: str, bias: bool):
    """n = 16, d = 3 (242 patterns; 1 152 with the bias column): targets for ``loss``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 3))
    y = {"logistic": np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0), "hinge": np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0),
         "cross_entropy": (np.arctan2(X[:, 1], X[:, 0]) > 0).astype(int) + (X[:, 2] > 0.5),
         "squared": np.c_[np.sin(X[:, 0]), np.cos(X.sum(axis=1))]}[loss]
    return X, y


@pytest.mark.parametrize("loss,bias", [("logistic", False), ("logistic", True), ("cross_entropy", False),
                                       ("cross_entropy", True), ("squared", False), ("hinge", False), ("hinge", True)])
def test_search_reaches_the_enumerated_optimum_for_every_loss_and_output_columns(loss, bias):
    """Λ = −∇L(ŷ): the logistic loss, the 3-class cross-entropy and two squared-loss outputs ("per_output": one
    dual constraint per column, each searched), and the hinge at the solver's dual point, reach the all-pattern
    optimum from 3 sampled patterns."""
    X, y = _classes_and_outputs(loss, bias)
    beta = 0.5 if loss == "squared" else 0.1
    full = cvxnn.fit(X, y, beta, patterns="all", max_patterns=5000, bias=bias, loss=loss, tol=1e-9,
                     solver="reference" if loss == "hinge" else "ipm")  # Clarabel fails on the logistic's exp cones
    assert full.lower_bound <= full.objective * (1 + 1e-12)
    assert full.objective - full.lower_bound <= 1e-6 * full.objective
    res = cvxnn.fit(X, y, beta, patterns=3, bias=bias, loss=loss, search=SearchOptions(max_rounds=30))
    assert res.search.stopped == "converged" and res.search.max_violation <= 1 + 1e-6
    assert len(res.patterns) < len(full.patterns) / 5
    assert full.lower_bound * (1 - 1e-9) <= res.objective <= full.objective * (1 + 1e-7)
    assert res.search.rounds[0].max_violation > 1 and res.search.rounds[0].n_added > 0
    assert np.all(np.diff(res.search.objectives) <= 1e-9 * res.search.objectives[0])


@pytest.mark.parametrize("loss,bias", [("squared", False), ("squared", True), ("cross_entropy", False)])
def test_search_reaches_the_enumerated_optimum_of_the_group_program(loss, bias):
    """vector_penalty="group": one search per round for the constraint (Σ_k σ_k^±(D)²)^½ ≤ β of all output columns
    together reaches the all-pattern optimum from 3 sampled patterns (ascents from each column's screened maxima
    alone stopped 0.03–0.35 % above it: the group maxima combine the columns)."""
    X, y = _classes_and_outputs(loss, bias)
    beta = 0.5 if loss == "squared" else 0.1
    full = cvxnn.fit(X, y, beta, patterns="all", max_patterns=5000, bias=bias, loss=loss, tol=1e-9,
                     vector_penalty="group", solver="ipm")
    assert full.objective - full.lower_bound <= 1e-6 * full.objective
    res = cvxnn.fit(X, y, beta, patterns=3, bias=bias, loss=loss, vector_penalty="group",
                    search=SearchOptions(max_rounds=30))
    assert res.search.stopped == "converged" and res.search.max_violation <= 1 + 1e-6
    assert len(res.patterns) < len(full.patterns) / 5
    assert full.lower_bound * (1 - 1e-9) <= res.objective <= full.objective * (1 + 1e-7)
    assert res.search.rounds[0].max_violation > 1 and res.search.rounds[0].n_added > 0


def test_group_fits_zero_the_blocks_the_kkt_conditions_zero():
    """"group" blocks whose constraint (Σ_k σ_ik^±²)^½ at the fit's dual point is below β are exactly zero after the
    interior-point solve; before, their dust stayed, and a search dropped no pattern from its list."""
    from cvxnn.duality import cone_sigma

    X, y = _classes_and_outputs("squared", False)
    res = cvxnn.fit(X, y, 0.5, patterns=60, vector_penalty="group", solver="ipm")
    assert res.relative_gap <= 1e-6
    lam = y - convex_prediction(X, res.patterns.masks, res.v, res.w)
    zero = 0
    for i in range(len(res.patterns)):
        mask = res.patterns.masks[:, i]
        for blocks, sign in ((res.v, 1), (res.w, -1)):
            C = sign * (X.T @ (mask[:, None] * lam))
            value = np.sqrt(sum(cone_sigma(X, mask, C[:, k])[0] ** 2 for k in range(2)))
            if value < 0.5 * 0.95:  # clearly inactive (the polish allows up to 10√gap of slack)
                assert not blocks[i].any()
                zero += 1
    assert zero > len(res.patterns)  # most of the 120 blocks
    searched = cvxnn.fit(X, y, 0.5, patterns=3, vector_penalty="group", search=SearchOptions(max_rounds=30))
    rounds = searched.search.rounds
    assert any(b.n_patterns < a.n_patterns + a.n_added for a, b in zip(rounds, rounds[1:]))  # patterns left


def test_group_search_values_are_exact():
    """With Λ (n, c) each value is (Σ_k σ_k^±(D)²)^½ from exact cone projections; ``achieved``, ‖(±Λᵀσ(X̃u))_+‖ at
    the stored unit u ∈ K(D), is a lower bound on it."""
    from cvxnn.duality import cone_sigma

    X, y = _classes_and_outputs("squared", False)
    res = cvxnn.fit(X, y, 0.5, patterns=3, vector_penalty="group")
    lam = y - convex_prediction(X, res.patterns.masks, res.v, res.w)
    found = search_violations(X, lam, 0.5, n_random=0, n_screen=200, seed=0)
    assert found.best_value > 0.5 and found.local_maxima.any()
    for i in range(min(len(found.values), 10)):
        mask, sign = found.patterns.masks[:, i], found.signs[i]
        C = X.T @ (mask[:, None] * lam)
        exact = np.sqrt(sum(cone_sigma(X, mask, sign * C[:, k])[0] ** 2 for k in range(2)))
        assert found.values[i] == pytest.approx(exact, rel=1e-9)
        assert found.achieved[i] <= found.values[i] * (1 + 1e-9)
        assert np.all((2 * mask - 1) * (X @ found.directions[i]) >= -1e-9)  # u lies in the cone of its pattern


@pytest.mark.parametrize("loss", ["hinge", "logistic"])
def test_the_fits_dual_point_is_the_one_its_lower_bound_scales(loss):
    """``ConvexFit.dual_point``: the hinge's comes from the solver (its subgradient is not unique), the logistic's
    is −∇L at the solver's point; scaled into feasibility on the list it gives the fit's lower bound."""
    from cvxnn.duality import max_dual_constraint, scaled_dual_value

    X, y = _classes_and_outputs("logistic", False)
    res = cvxnn.fit(X, y, 0.1, patterns=20, loss=loss, solver="ipm", tol=1e-8)
    lam = res.dual_point
    assert lam.shape == (16,) and np.all(lam * y >= 0) and np.all(lam * y <= 1)
    check = max_dual_constraint(X, res.patterns.masks, lam)
    bound, _ = scaled_dual_value(lam, y, check.value, 0.1, res.loss)
    assert res.objective * (1 - 1e-7) <= bound <= res.lower_bound * (1 + 1e-12)
    assert res.lower_bound <= res.objective * (1 + 1e-12)
    if loss == "logistic":  # −∇L = y σ(−y ŷ) at the solver's point, which the dust polish moves by little
        pred = convex_prediction(X, res.patterns.masks, res.v, res.w)
        np.testing.assert_allclose(lam, y / (1 + np.exp(y * pred)), rtol=0, atol=1e-5)


def test_max_violation_is_exact_and_proves_suboptimality_when_stopped_early():
    X, y = planted_two_neuron(0)
    res = cvxnn.fit(X, y, BETA, patterns=3, seed=0, search=SearchOptions(max_rounds=1))
    assert res.search.stopped == "max_rounds" and len(res.search.rounds) == 1
    lam = y - convex_prediction(X, res.patterns.masks, res.v, res.w)
    exact = max_dual_constraint(X, cvxnn.enumerate_patterns(X).masks, lam).value / BETA
    assert 1 < res.search.max_violation <= exact * (1 + 1e-9)
    assert res.search.rounds[0].n_added > 0 and not res.certified_global
    assert cvxnn.certify(res.network, X, y, BETA).globally_optimal is False


def test_nonconvex_seed_gives_at_most_its_objective():
    """Ψ(θ) is feasible on θ's patterns, so the program's optimum there is at most NC(θ)."""
    X, y = planted_two_neuron(1, n=30, d=4)
    init = NonconvexInit(epochs=100, width=8, lr=1e-2, seed=3)
    once = cvxnn.fit(X, y, BETA, init_nonconvex=init)
    assert once.search.stopped == "no_search" and len(once.search.rounds) == 1
    assert once.search.init_objective is not None and once.search.init_time > 0
    assert once.objective <= once.search.init_objective + 1e-9
    assert len(once.patterns) <= 8 and once.patterns.method == "network"
    searched = cvxnn.fit(X, y, BETA, init_nonconvex=init, search=SearchOptions(max_rounds=3))
    assert searched.objective <= once.objective * (1 + 1e-9)
    assert searched.search.rounds[0].objective == pytest.approx(once.objective, rel=1e-9)
    merged = cvxnn.fit(X, y, BETA, patterns=4, init_nonconvex=40)  # an int: Adam epochs, merged with samples
    assert len(merged.patterns) > 4 or merged.patterns.method.startswith("sampled")


def test_nonconvex_restarts_seed_the_list_with_every_run_and_start_from_the_best():
    """Three restarts (seeds 3, 4, 5): every run's patterns are in the list, the start is Ψ of the run with the
    lowest NC, so the optimum is at most that NC and at most the optimum on any one run's patterns."""
    X, y = planted_two_neuron(2, n=30, d=4)
    init = NonconvexInit(epochs=100, width=8, lr=1e-2, seed=3, restarts=3)
    res = cvxnn.fit(X, y, BETA, init_nonconvex=init)
    runs = [train_nonconvex(X, y, BETA, 8, lr=1e-2, epochs=100, seed=s, record_every=5) for s in (3, 4, 5)]
    listed = {res.patterns.masks[:, i].tobytes() for i in range(len(res.patterns))}
    singles = []
    for run in runs:
        pats = convex_from_network(run.network, X)[0]
        assert all(pats.masks[:, i].tobytes() in listed for i in range(len(pats)))
        singles.append(cvxnn.fit(X, y, BETA, patterns=pats).objective)
    assert len(listed) > max(len(convex_from_network(r.network, X)[0]) for r in runs)
    assert res.search.init_objective == pytest.approx(min(r.final_objective for r in runs), rel=1e-9)
    assert res.objective <= min(singles) * (1 + 1e-6) + 1e-9
    with pytest.raises(ValueError, match="restarts"):
        NonconvexInit(restarts=0)
    with pytest.raises(ValueError, match="restarts"):
        NonconvexInit(restarts=True)


def test_a_callback_raising_keyboard_interrupt_returns_the_best_fit_so_far():
    X, y = planted_two_neuron(3)
    seen = []

    def stop_after_two(log):
        seen.append(log)
        if log.round == 1:
            raise KeyboardInterrupt

    res = cvxnn.fit(X, y, BETA, patterns=3, seed=3, search=True, callback=stop_after_two)
    assert res.status == "interrupted" and res.search.stopped == "interrupted"
    assert [r.round for r in res.search.rounds] == [0, 1] and len(seen) == 2
    assert res.objective == pytest.approx(seen[1].objective, rel=1e-12)
    assert res.search.max_violation == seen[1].max_violation
    assert res.lower_bound <= res.objective and res.gap >= 0  # the certificate of the returned fit
    assert res.network_objective == pytest.approx(res.network.objective(X, y, BETA), rel=1e-12)


def test_interrupt_during_the_first_solve_returns_the_start_with_its_certificate(monkeypatch):
    import cvxnn.training as training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    X, y = planted_two_neuron(2, n=20, d=3)
    monkeypatch.setattr(training, "solve_reference", interrupted)
    res = cvxnn.fit(X, y, BETA, init_nonconvex=NonconvexInit(epochs=50, width=4), search=True)
    assert res.status == "interrupted" and res.search.rounds == []
    assert res.objective <= res.search.init_objective + 1e-9  # Ψ of the seed network
    assert res.lower_bound <= res.objective
    zero = cvxnn.fit(X, y, BETA, patterns=4, search=True)
    assert zero.status == "interrupted" and zero.objective == pytest.approx(0.5 * y @ y)
    Y = np.c_[y, -y]  # two outputs: the zero start has (P, d, 2) blocks (a (P, d) one raised a broadcast error)
    vector = cvxnn.fit(X, Y, BETA, patterns=4, search=True)
    assert vector.status == "interrupted" and vector.v.shape == (4, 3, 2)
    assert vector.objective == pytest.approx(0.5 * np.sum(Y * Y))


def test_time_limit_stops_the_search():
    X, y = planted_two_neuron(4)
    res = cvxnn.fit(X, y, BETA, patterns=3, seed=4, search=SearchOptions(time_limit=1e-6))
    assert res.search.stopped == "time_limit" and len(res.search.rounds) == 1
    last = res.search.rounds[0]  # the solve spent the budget: no search (not even its batched screen) after it
    assert last.n_screened == last.n_projections == last.n_added == 0 and last.search_time == 0.0
    assert np.isnan(last.max_violation) and np.isnan(res.search.max_violation)


def _teacher_problem():
    """n = 300, d = 6, targets of a 4-neuron ReLU teacher plus noise: far too many patterns to enumerate."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6))
    y = np.maximum(X @ rng.standard_normal((4, 6)).T, 0) @ rng.standard_normal(4) + 0.05 * rng.standard_normal(300)
    return X, y


def test_the_adam_move_starts_the_next_round_below_the_search_alone():
    """From 3 sampled patterns, Adam steps from each round's network find better patterns than the dual search
    adds: every accepted move lowers the program's objective by more than tol, the next round's solve starts from
    it (so ends at most there), and after 5 rounds the objective is far below the search's alone (11.35 against
    38.69 when measured)."""
    X, y = _teacher_problem()
    moved = cvxnn.fit(X, y, 1.0, patterns=3, search=SearchOptions(max_rounds=5))
    alone = cvxnn.fit(X, y, 1.0, patterns=3, search=SearchOptions(max_rounds=5, nonconvex_steps=0))
    rounds = moved.search.rounds
    assert len(rounds) == 5 and rounds[0].objective == pytest.approx(alone.search.rounds[0].objective, rel=1e-12)
    assert rounds[0].n_moved > 0  # the first fit, on 3 patterns, is far from stationary for NC
    for now, after in zip(rounds, rounds[1:]):
        assert now.nonconvex_time > 0 and np.isfinite(now.nonconvex_objective)
        assert (now.n_moved > 0) == (now.nonconvex_objective < now.objective * (1 - 1e-6))
        if now.n_moved:
            assert after.objective <= now.nonconvex_objective + 1e-9 * abs(now.nonconvex_objective)
            assert after.n_patterns == now.n_added + now.n_moved  # the moved network's and the new patterns only
    assert np.isnan(rounds[-1].nonconvex_objective)  # no move after the last round: its list is never solved
    assert np.all(np.diff(moved.search.objectives) <= 0)
    assert moved.objective < 0.5 * alone.objective
    assert all(np.isnan(r.nonconvex_objective) and r.n_moved == 0 and r.nonconvex_time == 0
               for r in alone.search.rounds)
    gated = cvxnn.fit(X, y, 1.0, patterns=3, formulation="gated", search=SearchOptions(max_rounds=2))
    assert all(np.isnan(r.nonconvex_objective) for r in gated.search.rounds)  # the ReLU program's move only
    kept = cvxnn.fit(X, y, 1.0, patterns=3, search=SearchOptions(max_rounds=3, keep_inactive=True)).search.rounds
    assert kept[0].n_moved > 0 and kept[1].n_patterns == kept[0].n_patterns + kept[0].n_added + kept[0].n_moved


def test_the_search_stops_moving_after_two_moves_in_a_row_that_did_not_help(monkeypatch):
    """A move that did not lower the objective is tried again at once with a step size 10 times smaller; after two
    in a row the search stops moving."""
    import dataclasses

    import cvxnn.pattern_search as pattern_search

    real, rates = pattern_search._nonconvex_move, []

    def never_better(program, res, base, steps, lr, deadline):
        rates.append(lr)
        return dataclasses.replace(real(program, res, base, steps, lr, deadline), accepted=False, n_added=0)

    monkeypatch.setattr(pattern_search, "_nonconvex_move", never_better)
    X, y = _teacher_problem()
    res = cvxnn.fit(X, y, 1.0, patterns=3, search=SearchOptions(max_rounds=4, nonconvex_lr=0.02))
    assert pattern_search.MOVE_PATIENCE == 2 and len(res.search.rounds) == 4
    assert rates == pytest.approx([0.02, 0.002], rel=1e-12)  # both in the first round
    assert np.isfinite(res.search.rounds[0].nonconvex_objective) and res.search.rounds[0].n_moved == 0
    assert all(np.isnan(r.nonconvex_objective) and r.nonconvex_time == 0 for r in res.search.rounds[1:])


def test_a_move_that_did_not_help_is_tried_again_in_the_same_round(monkeypatch):
    """The retry with the smaller step size runs in the same round, its patterns make the next list, and later
    rounds keep the smaller step size."""
    import dataclasses

    import cvxnn.pattern_search as pattern_search

    real, calls = pattern_search._nonconvex_move, []

    def first_fails(program, res, base, steps, lr, deadline):
        calls.append((len(res.patterns), lr))
        move = real(program, res, base, steps, lr, deadline)
        return dataclasses.replace(move, accepted=False, n_added=0) if len(calls) == 1 else move

    monkeypatch.setattr(pattern_search, "_nonconvex_move", first_fails)
    X, y = _teacher_problem()
    rounds = cvxnn.fit(X, y, 1.0, patterns=3, search=SearchOptions(max_rounds=3, nonconvex_lr=0.02)).search.rounds
    assert [lr for _, lr in calls] == pytest.approx([0.02, 0.002, 0.002], rel=1e-12)
    assert calls[0][0] == calls[1][0] == rounds[0].n_patterns  # both tries from the first round's fit
    assert rounds[0].n_moved > 0 and rounds[1].n_patterns == rounds[0].n_added + rounds[0].n_moved
    assert rounds[1].objective < rounds[0].nonconvex_objective * (1 + 1e-9)


def test_ctrl_c_during_the_adam_move_returns_the_best_fit(monkeypatch):
    """A KeyboardInterrupt inside the move's Adam run (which the run itself catches) still stops the search, after
    the round is logged."""
    import cvxnn.pattern_search as pattern_search

    real = pattern_search.train_nonconvex

    def pressed(*args, **kwargs):
        def ctrl_c(step, objective):
            raise KeyboardInterrupt

        return real(*args, **{**kwargs, "callback": ctrl_c})

    monkeypatch.setattr(pattern_search, "train_nonconvex", pressed)
    X, y = _teacher_problem()
    res = cvxnn.fit(X, y, 1.0, patterns=3, search=SearchOptions(max_rounds=4))
    assert res.status == "interrupted" and res.search.stopped == "interrupted" and len(res.search.rounds) == 1
    first = res.search.rounds[0]  # logged with its solve and search, the move cut short
    assert first.n_added > 0 and np.isnan(first.nonconvex_objective) and first.n_moved == 0
    assert res.objective == pytest.approx(first.objective, rel=1e-12)
    assert res.lower_bound <= res.objective < 0.5 * y @ y  # the first round's fit, with its certificate


def test_search_refuses_bad_options():
    X, y = planted_two_neuron(0)
    with pytest.raises(TypeError, match="search"):
        cvxnn.fit(X, y, BETA, search="yes")
    with pytest.raises(ValueError, match="max_rounds"):
        SearchOptions(max_rounds=0)
    with pytest.raises(ValueError, match="max_add"):
        SearchOptions(max_add=0)
    with pytest.raises(ValueError, match="nonconvex_steps"):
        SearchOptions(nonconvex_steps=-1)
    with pytest.raises(ValueError, match="nonconvex_steps"):
        SearchOptions(nonconvex_steps=2.5)
    for lr in (0.0, -1e-2, float("nan"), float("inf"), True, "0.01"):
        with pytest.raises(ValueError, match="nonconvex_lr"):
            SearchOptions(nonconvex_lr=lr)
    with pytest.raises(TypeError, match="init_nonconvex"):
        cvxnn.fit(X, y, BETA, init_nonconvex="adam")
    with pytest.raises(ValueError, match="init_nonconvex as Adam epochs"):
        cvxnn.fit(X, y, BETA, init_nonconvex=0)


def test_screened_starts_need_fewer_projections_and_report_exact_values():
    """The batched screen moves 400 directions without projections; only promising ones are projected."""
    X, y = planted_two_neuron(6, n=40, d=4)
    res = cvxnn.fit(X, y, BETA, patterns=4, seed=0)
    lam = y - convex_prediction(X, res.patterns.masks, res.v, res.w)
    plain = search_violations(X, lam, BETA, n_random=200, seed=0)
    screened = search_violations(X, lam, BETA, n_random=0, n_screen=200, seed=0, max_ascents=20)
    assert screened.n_projections < plain.n_projections / 3
    assert screened.best_value >= 0.9 * plain.best_value > BETA
    assert np.allclose(screened.achieved, screened.values, rtol=1e-9, atol=1e-12)
    for i in np.flatnonzero(screened.local_maxima)[:5]:
        mask = screened.patterns.masks[:, i]
        from cvxnn.duality import cone_sigma
        assert cone_sigma(X, mask, screened.signs[i] * (X.T @ (mask * lam)))[0] == pytest.approx(screened.values[i])


def test_warm_start_from_a_previous_fit():
    X, y = planted_two_neuron(5, n=30, d=4)
    cold = cvxnn.fit(X, y, BETA, patterns=30, formulation="gated", solver="fista", tol=1e-6)
    warm = cvxnn.fit(X, y, BETA, formulation="gated", solver="fista", tol=1e-6, warm_start=cold)
    assert warm.patterns is cold.patterns  # the previous list when none is given
    assert warm.n_iter < cold.n_iter / 5
    assert warm.objective == pytest.approx(cold.objective, rel=1e-5)
    pair = cvxnn.fit(X, y, BETA, patterns=cold.patterns, formulation="gated", solver="fista", tol=1e-6,
                     warm_start=(cold.v, cold.w))
    assert pair.n_iter == warm.n_iter
    ref = cvxnn.fit(X, y, 2 * BETA, warm_start=cvxnn.fit(X, y, BETA, patterns=10))  # reference: start unused
    assert ref.lower_bound <= ref.objective + 1e-9
    with pytest.raises(ValueError, match="shape"):
        cvxnn.fit(X, y, BETA, patterns=cold.patterns, warm_start=(cold.v[:2], cold.w[:2]))


def test_a_start_better_than_the_solvers_answer_is_kept_with_the_solvers_record():
    X, y = planted_two_neuron(5, n=30, d=4)
    best = cvxnn.fit(X, y, BETA, patterns=20, solver="reference")
    loose = cvxnn.fit(X, y, BETA, patterns=best.patterns, solver="ipm", tol=1e-2, warm_start=(best.v, best.w))
    assert np.array_equal(loose.v, best.v) and np.array_equal(loose.w, best.w)  # the start, not ipm's answer
    assert loose.solver == "ipm" and loose.n_iter > 0 and loose.solve_time > 0
    assert len(loose.history) >= loose.n_iter + 1  # ipm's own record: its start and every iteration
    assert loose.lower_bound <= loose.objective * (1 + 1e-9)


def test_fits_time_limit_bounds_a_search_whose_own_budget_is_larger():
    X, y = planted_two_neuron(5, n=30, d=4)
    res = cvxnn.fit(X, y, BETA, patterns=3, search=SearchOptions(max_rounds=50, time_limit=600), time_limit=1e-3)
    assert res.search.stopped == "time_limit" and len(res.search.rounds) == 1
    assert res.lower_bound <= res.objective * (1 + 1e-9)


def test_progress_display_runs(capsys):
    X, y = planted_two_neuron(0)
    res = cvxnn.fit(X, y, BETA, patterns=5, search=SearchOptions(max_rounds=2), progress=True)
    assert len(res.search.rounds) <= 2
    assert "pattern search" in capsys.readouterr().err


def test_estimators_take_solver_search_and_tol():
    from cvxnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 3))
    y = np.maximum(X @ np.array([1.0, -2.0, 0.5]), 0) + 0.1 * rng.standard_normal(40)
    plain = ConvexReLURegressor(alpha=0.01, n_patterns=4).fit(X, y)
    searched = ConvexReLURegressor(alpha=0.01, n_patterns=4, search=SearchOptions(max_rounds=4)).fit(X, y)
    assert searched.objective_ <= plain.objective_ * (1 + 1e-9)
    assert searched.convex_fit_.search is not None and len(searched.convex_fit_.patterns) > 4
    assert 0 <= searched.dual_gap_ < 1e-5 and isinstance(searched.n_iter_, int)
    gated = ConvexReLUClassifier(alpha=0.01, n_patterns=20, formulation="gated", solver="fista", tol=1e-5,
                                 loss="squared")
    gated.fit(X, y > np.median(y))
    assert gated.convex_fit_.solver == "fista" and gated.convex_fit_.relative_gap <= 1e-5
    for classes in (2, 3):  # the default log_loss: logistic for two classes, cross-entropy for three
        labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
        few = ConvexReLUClassifier(alpha=0.01, n_patterns=4).fit(X, labels)
        more = ConvexReLUClassifier(alpha=0.01, n_patterns=4, search=SearchOptions(max_rounds=3)).fit(X, labels)
        assert more.loss_ == ("logistic" if classes == 2 else "cross_entropy")
        assert more.objective_ < few.objective_ and len(more.convex_fit_.patterns) > 4
        assert 0 <= more.dual_gap_ < 1e-5 and more.predict(X).shape == (40,)
    with pytest.raises(ValueError, match="solver"):
        ConvexReLURegressor(solver="adam").fit(X, y)
    gated_plain = ConvexReLURegressor(alpha=0.01, n_patterns=4, formulation="gated").fit(X, y)
    gated_search = ConvexReLURegressor(alpha=0.01, n_patterns=4, formulation="gated",
                                       search=SearchOptions(max_rounds=3)).fit(X, y)
    assert gated_search.convex_fit_.objective < gated_plain.convex_fit_.objective
    assert len(gated_search.convex_fit_.search.rounds) == 3 and gated_search.predict(X).shape == (40,)
    with pytest.raises(ValueError, match="tol"):
        ConvexReLURegressor(tol=0).fit(X, y)


def test_progress_of_a_single_fista_solve(capsys):
    X, y = planted_two_neuron(1, n=30, d=4)
    res = cvxnn.fit(X, y, BETA, patterns=20, formulation="gated", solver="fista", progress=True)
    assert res.relative_gap <= 1e-6
    err = capsys.readouterr().err
    assert "relative gap" in err and "pattern search" not in err


@pytest.mark.parametrize("loss,vector_penalty", [("squared", "per_output"), ("squared", "group"),
                                                 ("cross_entropy", "per_output"), ("logistic", "per_output")])
def test_nonconvex_seed_uses_the_programs_loss_and_outputs(loss, vector_penalty):
    """The seed run trains with the program's loss and activation; its Ψ blocks ((P, d, c) for vector outputs)
    start the solve, so the fit is at most the program objective at Ψ(θ), itself at most NC_l1(θ)."""
    from cvxnn.network import convex_objective

    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    y = {"squared": rng.standard_normal((30, 2)), "cross_entropy": rng.integers(0, 3, 30),
         "logistic": np.sign(rng.standard_normal(30))}[loss]
    init = NonconvexInit(epochs=80, width=6, seed=1)
    res = cvxnn.fit(X, y, 0.5, init_nonconvex=init, loss=loss, vector_penalty=vector_penalty, activation="leaky_relu",
                    solver="reference")
    run = train_nonconvex(X, y, 0.5, 6, epochs=80, seed=1, record_every=4, loss=loss, activation="leaky_relu")
    assert res.search.init_objective == pytest.approx(run.final_objective, rel=1e-9)
    program_loss = cvxnn.losses.loss_from(loss)
    targets = program_loss.targets(y, 30)
    pats, v, w = convex_from_network(run.network, X)
    at_seed = convex_objective(X, targets, pats.masks, v, w, 0.5, run.network.activation, program_loss, vector_penalty)
    assert at_seed <= run.network.objective(X, y, 0.5, loss, output_norm="l1") + 1e-9
    assert res.objective <= at_seed + 1e-9 and res.relative_gap <= 1e-6
