"""Calibration, thresholds for a goal, taxonomy rules and the decision layer's persistence."""

from __future__ import annotations

import numpy as np
import pytest

from adtag.data.taxonomy import Taxonomy
from adtag.decisions.calibrate import Calibrator
from adtag.decisions.decider import Decider, Rules, parse_group_counts
from adtag.decisions.oof import MeanFusion, fold_ids, system_oof
from adtag.decisions.rules import apply_rules
from adtag.decisions.thresholds import Goal, fit_thresholds, parse_goal
from adtag.errors import AdtagError
from adtag.metrics import decision_scores, expected_calibration_error, per_group
from tests.conftest import shared_data


def miscalibrated(n: int = 4000, L: int = 6, seed: int = 0):
    """True probabilities q; reported scores are an over-confident, tag-dependent distortion of q."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.5, 1.5, size=(n, L)) + np.linspace(-1, 1, L)
    q = 1 / (1 + np.exp(-z))
    y = rng.random((n, L)) < q
    shift = np.linspace(-1.0, 1.0, L)
    scores = 1 / (1 + np.exp(-(2.5 * z + shift)))
    return scores, y, q


def test_calibration_fixes_a_distorted_score_on_new_data():
    s_fit, y_fit, _ = miscalibrated(seed=0)
    s_new, y_new, _ = miscalibrated(seed=1)
    cal = Calibrator().fit(s_fit, y_fit)
    before = expected_calibration_error(s_new, y_new)
    after = expected_calibration_error(cal.transform(s_new), y_new)
    assert before > 0.05
    assert after < 0.02
    # Monotone per tag: each tag's order of items is kept.
    out = cal.transform(s_new)
    for j in range(s_new.shape[1]):
        o = np.argsort(s_new[:, j])
        assert np.all(np.diff(out[o, j]) >= -1e-7)


def test_calibration_pools_a_rare_tag_toward_the_shared_fit():
    s, y, _ = miscalibrated(n=3000, L=4, seed=2)
    y = y.copy()
    y[:, 3] = False
    y[np.argsort(-s[:, 3])[:2], 3] = True  # two positives only
    pooled = Calibrator(isotonic=False).fit(s, y)
    free = Calibrator(prior=0.0, isotonic=False).fit(s, y)
    # Alone, a 2-positive tag gets an extreme fit; with the prior it stays near the pooled one,
    # while the tags with hundreds of positives hardly move.
    assert abs(free.a_[3] - free.pooled_[0]) > 3 * abs(pooled.a_[3] - pooled.pooled_[0])
    np.testing.assert_allclose(pooled.a_[:3], free.a_[:3], rtol=0.05)


def test_calibrator_state_round_trip():
    s, y, _ = miscalibrated(seed=3)
    cal = Calibrator().fit(s, y)
    again = Calibrator.from_state({k: np.array(v) for k, v in cal.state().items()})
    np.testing.assert_allclose(again.transform(s), cal.transform(s))


@pytest.mark.parametrize(
    ("text", "goal"),
    [("f1", Goal("f1")), ("precision=0.9", Goal("precision", 0.9)), (" Recall=0.8", Goal("recall", 0.8))],
)
def test_parse_goal(text, goal):
    assert parse_goal(text) == goal


@pytest.mark.parametrize("text", ["precision=1.5", "recall=0", "precision", "f2", "f1=0.3", "precision=abc"])
def test_parse_goal_rejects(text):
    with pytest.raises(AdtagError, match="--decide"):
        parse_goal(text)


def test_thresholds_reach_their_goal_on_new_data():
    s_fit, y_fit, _ = miscalibrated(n=6000, seed=4)
    s_new, y_new, _ = miscalibrated(n=6000, seed=5)
    cal = Calibrator().fit(s_fit, y_fit)
    c_fit, c_new = cal.transform(s_fit), cal.transform(s_new)
    th = fit_thresholds(c_fit, y_fit, Goal("precision", 0.8))
    got = decision_scores(th.decide(c_new), y_new)
    assert abs(got["micro_precision"] - 0.8) < 0.04
    th = fit_thresholds(c_fit, y_fit, Goal("recall", 0.7))
    assert abs(decision_scores(th.decide(c_new), y_new)["micro_recall"] - 0.7) < 0.04
    f1 = decision_scores(fit_thresholds(c_fit, y_fit, Goal("f1")).decide(c_new), y_new)["macro_f1"]
    half = decision_scores(c_new >= 0.5, y_new)["macro_f1"]
    assert f1 > half


def test_precision_goal_lands_on_its_target_where_the_empirical_cut_falls_short():
    """On 400 fitting items the lowest cut whose counted precision reaches 0.9 lands where the noisy
    precision curve last touched 0.9: on new items it falls short. The posterior estimate (counts plus
    the calibrated scores' own prediction) lands on the target, neither below nor, as the z = 0.5
    lower bound with 20 pseudo-pairs did before BENCHMARKS 11e (0.926 here), above it."""
    got = {"counted": [], "default": [], "default 0.8": []}
    for seed in range(10):
        s, y, _ = miscalibrated(n=400, seed=100 + seed)
        s_new, y_new, _ = miscalibrated(n=20000, seed=200 + seed)
        cal = Calibrator(method="platt").fit(s, y)
        c, c_new = cal.transform(s), cal.transform(s_new)
        for key, goal, kw in (
            ("counted", 0.9, {"z": 0.0, "m": 0.0}),
            ("default", 0.9, {}),
            ("default 0.8", 0.8, {}),
        ):
            th = fit_thresholds(c, y, Goal("precision", goal), **kw)
            got[key].append(decision_scores(th.decide(c_new), y_new)["micro_precision"])
    assert np.mean(got["counted"]) < 0.88
    assert abs(np.mean(got["default"]) - 0.9) < 0.01 and min(got["default"]) > 0.86
    assert abs(np.mean(got["default 0.8"]) - 0.8) < 0.01


def test_wilson_lower_bound():
    from adtag.decisions.thresholds import wilson_lower

    np.testing.assert_allclose(wilson_lower(np.array([9.0]), np.array([10.0]), 0.0), [0.9])
    lb = wilson_lower(np.array([9.0, 90.0, 900.0]), np.array([10.0, 100.0, 1000.0]), 1.0)
    assert np.all(lb < 0.9) and np.all(np.diff(lb) > 0) and lb[-1] > 0.89


def test_auto_calibration_keeps_the_scores_unless_a_map_is_clearly_better(tmp_path):
    from adtag.decisions import calibrate

    rng = np.random.default_rng(20)
    q = 1 / (1 + np.exp(-rng.normal(-1.5, 1.5, size=(3000, 6))))
    y = rng.random(q.shape) < q
    np.testing.assert_allclose(Calibrator(method="identity").fit(q, y).transform(q), q, atol=1e-4)
    s, y2, _ = miscalibrated(seed=21)
    for scores, truth in ((q, y), (s, y2), (q[:150], y[:150])):
        cal = Calibrator().fit(scores, truth)
        assert set(cal.cv_ece_) == set(calibrate.METHODS)
        assert cal.method_ == calibrate.DEFAULT or cal.cv_ece_[cal.method_] < cal.cv_ece_[calibrate.DEFAULT]
    # Calibrated scores are kept as they are, on 3,000 items and on 150.
    assert Calibrator().fit(q, y).method_ == "identity" == Calibrator().fit(q[:150], y[:150]).method_
    # A tag-dependent distortion is clearly fixed by a per-tag map.
    assert Calibrator().fit(s, y2).method_.startswith("tag-platt")
    # Over-confident by one slope for all tags: a map is chosen, far better than the scores as they are.
    wide = 1 / (1 + np.exp(-3 * np.log(q / (1 - q))))
    cal = Calibrator().fit(wide, y)
    assert cal.method_ != "identity" and cal.cv_ece_["identity"] > 5 * cal.cv_ece_[cal.method_]
    # The choice is stored with the decision layer and read back.
    tags = [f"t{j}" for j in range(6)]
    Decider.fit(wide, y, tags, "f1").save(tmp_path)
    back = Decider.load(tmp_path)
    assert back.calibrator.method_ == cal.method_ and back.metrics["calibration"] == cal.method_


def test_rare_tags_share_a_pooled_threshold():
    s, y, _ = miscalibrated(n=2000, L=5, seed=6)
    y = y.copy()
    y[:, 0] = False
    y[:3, 0] = True
    th = fit_thresholds(s, y, Goal("f1"), min_positives=10)
    assert not th.own[0] and th.own[1:].all()
    assert th.values[0] == th.pooled


def test_impossible_precision_is_an_error():
    rng = np.random.default_rng(0)
    s = rng.random((500, 3))
    y = rng.random((500, 3)) < 0.3  # scores carry no signal: precision 0.99 is out of reach
    with pytest.raises(AdtagError, match="impossible target"):
        fit_thresholds(s, y, Goal("precision", 0.99))


def test_review_band_straddles_the_threshold():
    s, y, _ = miscalibrated(seed=7)
    th = fit_thresholds(s, y, Goal("f1"), band=0.05)
    r = th.review(s)
    assert r.any()
    assert np.all(np.abs(s[r] - np.broadcast_to(th.values, s.shape)[r]) < 0.05)


# ---------------------------------------------------------------- taxonomy
def test_taxonomy_reads_the_taac_dimension_file_as_it_is():
    path = shared_data() / "taac2021" / "labels" / "label_dimension.csv"
    if not path.is_file():
        pytest.skip("no TAAC labels in ../shared/data")
    tags = [line.split("\t")[0] for line in (path.parent / "label_id.txt").read_text(encoding="utf-8").splitlines()]
    tax = Taxonomy.from_file(path, tags)
    assert len(tax.group) == 82
    sizes = {g: sum(v == g for v in tax.group.values()) for g in tax.groups}
    assert sorted(sizes.values()) == [17, 17, 23, 25]
    assert not tax.parent


def test_taxonomy_errors_name_the_line(tmp_path):
    def check(text, pattern, tags=None):
        p = tmp_path / "tax.csv"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(AdtagError, match=pattern):
            Taxonomy.from_file(p, tags)

    check("tag,group,parent\na,g1\nb,g2\na,g2\n", r"tax.csv:4: tag 'a' is in two groups, 'g1' \(line 2\)")
    check("a,g\nb,g\nzz,g\n", r"tax.csv:3: unknown tag 'zz'", tags=["a", "b"])
    check("a,g,b\nb,g,c\nc,g,a\n", r"tax.csv:1: parent cycle a -> b -> c -> a")
    check("a,g,nope\n", r"tax.csv:1: parent 'nope'")
    check("a\n", r"tax.csv:1: expected 'tag,group\[,parent\]'")


def test_rules_group_cap_minimum_and_parents():
    tax = Taxonomy.parse(["animal,kind", "dog,kind,animal", "puppy,kind,dog", "red,colour", "blue,colour"])
    tags = ["animal", "dog", "puppy", "red", "blue"]
    groups, _ = tax.group_index(tags)
    parents = tax.parent_index(tags)
    scores = np.array([[0.1, 0.2, 0.9, 0.8, 0.7], [0.1, 0.15, 0.1, 0.2, 0.3]])
    decided = scores >= 0.5
    out = apply_rules(scores, decided, groups, parents, per_group_max=1, per_group_min=1)
    # item 0: puppy decided -> dog and animal implied; colour capped at its best (red)
    assert out[0].tolist() == [True, True, True, True, False]
    # item 1: nothing passed; at least one per group: the best of each (dog -> animal implied, blue)
    assert out[1].tolist() == [True, True, False, False, True]


def test_per_group_minimum_per_group():
    """``--per-group-min narrative=0,scene=1``: each group its own minimum (a group many items lack: 0)."""
    assert parse_group_counts("2") == 2
    assert parse_group_counts("narrative=0, scene=1") == {"narrative": 0, "scene": 1}
    assert parse_group_counts("1,narrative=0") == {"*": 1, "narrative": 0}
    for bad in ("scene=-1", "scene=x", "a=1,a=2", "=1"):
        with pytest.raises(AdtagError):
            parse_group_counts(bad)
    tax = Taxonomy.parse(["a,g1", "b,g1", "c,g2", "d,g2", "e,g3"])
    tags = ["a", "b", "c", "d", "e"]
    groups, names = tax.group_index(tags)
    scores = np.full((2, 5), 0.1)
    scores[:, [1, 2, 4]] = 0.2
    none = np.zeros_like(scores, bool)
    for spec, want in [
        ("g2=1", [False, False, True, False, False]),
        ("1,g1=0", [False, False, True, False, True]),
        ("g1=2,g3=1", [True, True, False, False, True]),
    ]:
        mins = Rules(tax, per_group_min=parse_group_counts(spec)).group_mins(names)
        out = apply_rules(scores, none, groups, per_group_min=mins)
        assert out[0].tolist() == want, spec
    with pytest.raises(AdtagError, match=r"--per-group-min: no group 'scenes'.*groups: g1, g2, g3"):
        Rules(tax, per_group_min={"scenes": 1}).group_mins(names)
    # Stored and read back as it was given.
    back = Rules.from_json(Rules(tax, per_group_min={"*": 1, "g1": 0}).to_json())
    assert back.per_group_min == {"*": 1, "g1": 0}


def test_per_group_maximum_per_group():
    """``--per-group-max 3,scene=1``: each group its own cap (0: no cap), checked against the taxonomy."""
    tax = Taxonomy.parse(["a,g1", "b,g1", "c,g1", "d,g2", "e,g2", "f,g3", "g,g3"])
    tags = list("abcdefg")
    groups, names = tax.group_index(tags)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.55, 0.52, 0.51]])
    everything = np.ones_like(scores, bool)
    for spec, want in [
        ("1", "a d f"),
        ("2", "a b d e f g"),
        ("g1=1", "a d e f g"),  # groups not named: no cap
        ("2,g3=1", "a b d e f"),
        ("1,g2=0", "a d e f"),  # 0: no cap for g2
    ]:
        maxes = Rules(tax, per_group_max=parse_group_counts(spec)).group_maxes(names)
        out = apply_rules(scores, everything, groups, per_group_max=maxes)
        assert " ".join(t for t, keep in zip(tags, out[0], strict=True) if keep) == want, spec
    # A cap and a minimum per group together: g1 capped at 1, g3 forced to 1 though nothing passed there.
    rules = Rules(tax, per_group_max={"g1": 1}, per_group_min={"g3": 1})
    passed = scores >= 0.7
    out = apply_rules(
        scores, passed, groups, per_group_max=rules.group_maxes(names), per_group_min=rules.group_mins(names)
    )
    assert out[0].tolist() == [True, False, False, False, False, True, False]
    with pytest.raises(AdtagError, match=r"--per-group-max: no group 'g4'.*groups: g1, g2, g3"):
        Rules(tax, per_group_max={"g4": 1}).check_groups(names)
    back = Rules.from_json(Rules(tax, per_group_max={"*": 2, "g1": 1}).to_json())
    assert back.per_group_max == {"*": 2, "g1": 1}
    assert Rules.from_json(Rules(tax, per_group_max=3).to_json()).per_group_max == 3


def test_per_group_metrics():
    tags = ["a", "b", "c", "d"]
    tax = Taxonomy.parse(["a,g1", "b,g1", "c,g2", "d,g2"])
    groups, names = tax.group_index(tags)
    s = np.array([[0.9, 0.1, 0.2, 0.8], [0.2, 0.7, 0.9, 0.1]])
    t = np.array([[1, 0, 1, 0], [0, 1, 1, 0]])
    res = per_group(s, t, groups, names, decided=s >= 0.5)
    assert res["g1"]["hit1"] == 1.0 and res["g1"]["gap"] == pytest.approx(1.0)
    assert res["g2"]["hit1"] == 0.5
    assert res["g1"]["micro_f1"] == 1.0


# ---------------------------------------------------------------- whole-system out-of-fold + persistence
def test_system_oof_never_scores_an_item_with_a_fusion_that_saw_it():
    seen = []

    class Spy:
        def fit(self, P, present, extras, Y):
            self.ids = set(extras[:, 0].astype(int))
            return self

        def predict_proba(self, P, present, extras):
            seen.append(self.ids & set(extras[:, 0].astype(int)))
            return P.mean(1)

    n = 50
    P = np.random.default_rng(0).random((n, 2, 3)).astype(np.float32)
    out = system_oof(P, np.ones((n, 2), bool), np.arange(n)[:, None], np.zeros((n, 3)), Spy, folds=5)
    assert all(not s for s in seen) and len(seen) == 5
    np.testing.assert_allclose(out, P.mean(1), rtol=1e-6)
    assert np.bincount(fold_ids(n, 5)).tolist() == [10] * 5
    np.testing.assert_allclose(MeanFusion().predict_proba(P, np.ones((n, 2), bool), None), P.mean(1), rtol=1e-6)


def test_decider_round_trip_and_new_goal(tmp_path):
    s, y, _ = miscalibrated(n=1500, seed=8)
    tags = [f"t{j}" for j in range(s.shape[1])]
    tax = Taxonomy.parse([f"{t},g{j % 2}" for j, t in enumerate(tags)])
    d = Decider.fit(s, y, tags, "f1", ids=[str(i) for i in range(len(s))], rules=Rules(tax, per_group_max=1))
    assert d.metrics["oof_ece_after"] < d.metrics["oof_ece_before"]
    d.save(tmp_path)
    back = Decider.load(tmp_path)
    for a, b in zip(d.decide(s[:50]), back.decide(s[:50]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.rules.per_group_max == 1 and back.oof_ids[:2] == ["0", "1"]
    strict = back.with_goal("precision=0.9")
    assert strict.decide(s)[1].sum() < back.decide(s)[1].sum()
    rows = back.explain_rows(s[:3])
    assert all(set(r) == {"decided", "review"} for r in rows)


def test_decider_missing_or_broken(tmp_path):
    with pytest.raises(AdtagError, match="no decision layer"):
        Decider.load(tmp_path)
    (tmp_path / "decisions.json").write_text("{}", encoding="utf-8")
    (tmp_path / "decisions.npz").write_bytes(b"garbage")
    with pytest.raises(AdtagError, match="unreadable"):
        Decider.load(tmp_path)


def test_report_shows_reliability_and_thresholds(tmp_path):
    from adtag.report.decisions import decisions_data
    from adtag.report.html import render_report
    from tests.test_report import _inputs

    s, y, _ = miscalibrated(n=1200, L=6, seed=9)
    tags = ["室内/indoor", "a<b & c", "t2", "t3", "t4", "t5"]
    y = y.copy()
    y[:, 5] = False
    y[:4, 5] = True  # a rare tag: pooled threshold
    d = Decider.fit(s[:800], y[:800], tags, "f1")
    data = decisions_data(d, s[800:], y[800:])
    assert data["ece_after"] < data["ece_before"]
    # decided on other scores (the layer's refits' mean): the decisions follow them, the calibration does not
    other = np.clip(s[800:] + 0.15 * (y[800:] - 0.5), 0, 1)
    moved = decisions_data(d, s[800:], y[800:], decide_on=other)
    from adtag.metrics import decision_scores

    assert moved["decisions"] == decision_scores(d.decide(other)[1], y[800:]) != data["decisions"]
    assert moved["ece_after"] == data["ece_after"] and str(moved["reliability"]) == str(data["reliability"])
    path = tmp_path / "r.html"
    render_report(path, decisions=data, **_inputs())
    page = path.read_text(encoding="utf-8")
    section = page[page.index('id="decisions"') :]
    assert "reliability diagram" in section and "data:image/png;base64," in section
    assert "a&lt;b &amp; c" in section and "a<b & c" not in section
    assert "pooled" in section and "own" in section
    plain = tmp_path / "plain.html"
    render_report(plain, **_inputs())
    assert "adtag train --decide" in plain.read_text(encoding="utf-8")


def test_single_choice_group_scores_compete():
    from adtag.decisions.decider import normalise_groups, single_choice_groups

    truth = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]], bool)
    groups = np.array([0, 0, 0, 1])
    excl = single_choice_groups(truth, groups)
    assert excl.tolist() == [0, 0, 0, -1]  # group 1 has a single tag: nothing to compete with
    s = np.array([[0.6, 0.2, 0.2, 0.9]])
    np.testing.assert_allclose(normalise_groups(s, excl), [[0.6, 0.2, 0.2, 0.9]])
    s = np.array([[0.3, 0.1, 0.1, 0.9]])
    np.testing.assert_allclose(normalise_groups(s, excl), [[0.6, 0.2, 0.2, 0.9]])
    # A group where one training item has two tags is not single-choice.
    assert (single_choice_groups(np.array([[1, 1, 0, 0]], bool), groups) == -1).all()


def test_audit_ranks_corrupted_labels_first():
    from adtag.audit import error_probability, rank_suspects

    s, y, q = miscalibrated(n=3000, L=6, seed=10)
    rng = np.random.default_rng(1)
    noisy = y.copy()
    pos, neg = np.argwhere(y), np.argwhere(~y)
    drop = pos[rng.choice(len(pos), len(pos) // 10, replace=False)]
    add = neg[rng.choice(len(neg), len(pos) // 20, replace=False)]
    noisy[tuple(drop.T)] = False
    noisy[tuple(add.T)] = True
    corrupted = noisy != y
    cal = Calibrator().fit(s, noisy).transform(s)
    e = error_probability(cal, noisy)
    # A labelled tag is more suspicious the lower its score, an unlabelled one the higher.
    assert e[noisy][np.argmin(cal[noisy])] == e[noisy].max()
    assert e[~noisy][np.argmax(cal[~noisy])] == e[~noisy].max()
    rows = rank_suspects(cal, noisy, [str(i) for i in range(len(s))], [f"t{j}" for j in range(6)], top=100)
    hits = [corrupted[int(r.item), int(r.tag[1:])] for r in rows]
    assert np.mean(hits) > 5 * corrupted.mean()  # far better than picking labels at random
    assert {r.kind for r in rows} == {"likely wrong", "likely missing"}
    with pytest.raises(ValueError, match="noise rates"):
        error_probability(cal, noisy, drop=0.7, add=0.4)


def test_audit_calibrates_the_out_of_fold_scores_per_tag_whatever_the_layer_chose():
    """The audit ranks out-of-fold scores: a layer that keeps new items' scores as they are
    (identity) still has them calibrated per tag for the audit."""
    from adtag.audit import audit_scores

    s, y, _ = miscalibrated(n=3000, L=6, seed=11)
    d = Decider.fit(s, y, [f"t{j}" for j in range(6)], "f1", calibration="identity")
    np.testing.assert_allclose(d.calibrate(s), s, atol=1e-3)
    a = audit_scores(d)
    assert expected_calibration_error(s, y) > 0.05 > 0.02 > expected_calibration_error(a, y)
    np.testing.assert_allclose(audit_scores(d, np.arange(10, 20)), a[10:20])


def _two_branch_meta_features(n: int = 120, L: int = 5, seed: int = 0):
    """Branch 0 carries the tags, branch 1 is noise: a learned fusion beats plain averaging."""
    from adtag.models.meta_features import MetaFeatures

    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < 0.3).astype(np.float32)
    good = np.clip(0.15 + 0.7 * Y + rng.normal(0, 0.12, (n, L)), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, (n, L))
    P = np.stack([good, noise], axis=1).astype(np.float32)
    return MetaFeatures(P, np.ones((n, 2), bool), ["good", "noise"], np.zeros((n, 0), np.float32)), Y


def test_a_held_rung_lands_the_stacker_chain_there_and_fits_no_richer_rung():
    from adtag.models.fusions import create_fusion

    mf, Y = _two_branch_meta_features()
    free = create_fusion("stack", 0).fit(mf, Y)
    assert free.chosen_ != "mean" and "net" in free.cv_gap_
    for rung in ("mean", "linear"):
        held = create_fusion("stack", 0, rung=rung).fit(mf, Y)
        assert held.chosen_ == rung and "net" not in held.cv_gap_
    assert create_fusion("stack", 0, rung="mean").fit(mf, Y).net_ is None
    assert create_fusion("stack", 0, rung="blend").fit(mf, Y).chosen_ == "net"  # blend below its size: net
    with pytest.raises(ValueError, match="unknown rung"):
        create_fusion("stack", 0, rung="deep")


def test_whole_system_oof_refits_the_stacker_on_the_final_stackers_rung():
    """The refits behind the decision layer's out-of-fold scores hold the final stacker's rung: with a
    final stacker on plain averaging, every item's out-of-fold score is its branches' average, although
    a free chain would learn to drop the noise branch here."""
    from types import SimpleNamespace

    from adtag.decisions.fit import tagger_oof_scores
    from adtag.models.fusions import create_fusion, mean_fusion
    from adtag.models.tagger import TrainConfig

    mf, Y = _two_branch_meta_features()
    assert create_fusion("stack", 0).fit(mf, Y).chosen_ != "mean"  # the free chain learns something
    tagger = SimpleNamespace(config=TrainConfig(), fusion_=SimpleNamespace(chosen_="mean"), meta_features_=mf)
    oof = tagger_oof_scores(tagger, Y)
    np.testing.assert_allclose(oof, mean_fusion(mf.P, mf.present), rtol=1e-5, atol=1e-6)


def test_the_layer_keeps_its_refits_and_decides_new_items_on_their_mean(tmp_path):
    """The K refits behind the out-of-fold scores are kept (refit k reproduces fold k's stored scores),
    survive the model folder, and new items are decided on their mean while the ranked scores stay the
    final fusion's; a layer without refits (an older folder) decides on the ranked scores."""
    from dataclasses import replace
    from types import SimpleNamespace

    from adtag.decisions.fit import fit_decider, scores_for_decisions
    from adtag.models.fusions import create_fusion
    from adtag.models.meta_features import MetaFeatures
    from adtag.models.tagger import TrainConfig, fuse_passes

    mf, Y = _two_branch_meta_features()
    final = create_fusion("stack", 0, rung="linear").fit(mf, Y)
    tagger = SimpleNamespace(config=TrainConfig(), fusion_=final, meta_features_=mf, on_features=False)
    tagger.vocab_ = SimpleNamespace(tags=[f"t{j}" for j in range(Y.shape[1])])
    d = fit_decider(tagger, [str(i) for i in range(len(Y))], Y, "precision=0.8")
    assert len(d.refits) == TrainConfig().folds and all(r.chosen_ == "linear" for r in d.refits)
    fold = fold_ids(len(Y), TrainConfig().folds, TrainConfig().seed + 7)
    for k, r in enumerate(d.refits):
        rows = np.flatnonzero(fold == k)
        sub = MetaFeatures(mf.P[rows], mf.present[rows], mf.branches, mf.extras[rows])
        np.testing.assert_allclose(r.predict_proba(sub), d.oof_scores[rows], rtol=1e-5, atol=1e-6)

    d.save(tmp_path)
    back = Decider.load(tmp_path)
    assert len(back.refits) == len(d.refits)
    for a, b in zip(d.refits, back.refits, strict=True):
        np.testing.assert_allclose(a.predict_proba(mf), b.predict_proba(mf), rtol=1e-6)

    rng = np.random.default_rng(3)
    passes = [
        MetaFeatures(
            np.clip(mf.P[:40] + rng.normal(0, 0.05, mf.P[:40].shape), 0, 1).astype(np.float32),
            mf.present[:40],
            mf.branches,
            mf.extras[:40],
        )
        for _ in range(3)
    ]
    tagger.decider_ = back
    tagger.meta_features = lambda items, passes_=passes, **kw: passes_
    tagger.predict_proba = lambda items: fuse_passes(final, passes)
    ranked, decide_on = scores_for_decisions(tagger, list(range(40)))
    np.testing.assert_allclose(ranked, fuse_passes(final, passes), rtol=1e-6)
    mean = sum(fuse_passes(r, passes) for r in back.refits) / len(back.refits)
    np.testing.assert_allclose(decide_on, mean, rtol=1e-5, atol=1e-6)
    assert not np.allclose(decide_on, ranked)  # the refits are other models than the final fusion
    tagger.decider_ = replace(back, refits=[])
    ranked2, decide_on2 = scores_for_decisions(tagger, list(range(40)))
    np.testing.assert_array_equal(ranked2, decide_on2)
