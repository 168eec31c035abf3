"""The decision layer of a model folder: calibration, per-tag thresholds and taxonomy rules.

Fitted on the whole system's out-of-fold scores of the training items, which are kept (with the
items' ids and labels) so that another goal or band can be chosen later without retraining and
so that ``adtag audit`` can rank suspicious labels. The K refitted fusions that made those scores
are kept too (``refits``): new items are decided on their mean score (``fit.scores_for_decisions``), the
scale the thresholds were chosen on. Stored as ``decisions.npz`` (arrays only, read with
``allow_pickle=False``) and ``decisions.json`` (the refits as the model folder's component records);
nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from adtag.data.taxonomy import Taxonomy
from adtag.decisions.calibrate import Calibrator
from adtag.decisions.rules import apply_rules
from adtag.decisions.thresholds import Goal, Thresholds, fit_thresholds, parse_goal
from adtag.errors import AdtagError
from adtag.io import atomic_path, write_json
from adtag.metrics import decision_scores, expected_calibration_error
from adtag.models.base import from_record, to_record

ARRAYS_FILE = "decisions.npz"
META_FILE = "decisions.json"


def single_choice_groups(truth: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each tag's group if no training item has two tags of it (and it has two tags or more), else -1.

    Without a taxonomy the whole vocabulary is one group: a single-label data set (TNEWS) is one
    single-choice group.
    """
    out = np.full(len(groups), -1, np.int64)
    for g in np.unique(groups[groups >= 0]):
        cols = groups == g
        if cols.sum() >= 2 and truth.shape[0] and truth[:, cols].sum(1).max() <= 1:
            out[cols] = g
    return out


def normalise_groups(scores: np.ndarray, exclusive: np.ndarray | None) -> np.ndarray:
    """Within a single-choice group the tags compete: scores are divided by their sum per item.

    The stacker scores each tag on its own; where at most one tag of a group can be right, the
    share of the group's total is the better estimate and ranks items against each other better
    (GAP pools all items' pairs).
    """
    if exclusive is None or not (exclusive >= 0).any():
        return scores
    out = np.array(scores, dtype=np.float64, copy=True)
    for g in np.unique(exclusive[exclusive >= 0]):
        cols = exclusive == g
        total = out[:, cols].sum(1, keepdims=True)
        out[:, cols] = np.divide(out[:, cols], total, out=out[:, cols], where=total > 0)
    return out


def parse_group_counts(text: str) -> int | dict[str, int]:
    """``--per-group-min`` / ``--per-group-max``: ``N`` for every group, or ``GROUP=N,...`` with an
    optional plain ``N`` as the value of the groups not named (``1,narrative=0``); each count 0 or more."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in str(text).split(",")):
        name, eq, val = part.rpartition("=") if "=" in part else ("*", "=", part)
        name = name.strip()
        try:
            n = int(val)
        except ValueError:
            raise AdtagError(f"{text!r}: expected N or GROUP=N[,GROUP=N...], got {part!r}") from None
        if n < 0 or not name or name in out:
            raise AdtagError(f"{text!r}: {part!r}: counts must be 0 or more, each group named once")
        out[name] = n
    return out["*"] if list(out) == ["*"] else out


@dataclass
class Rules:
    taxonomy: Taxonomy | None = None
    # None or 0: no cap; one number for every group, or {group: N} ("*": the groups not named).
    per_group_max: int | dict[str, int] | None = None
    # One number for every group, or {group: N} ("*": the groups not named).
    per_group_min: int | dict[str, int] = 0
    # Every training item has a tag, so under the f1 goal every item gets at least its best one;
    # a precision or recall goal is kept as asked (None: 1 for f1, else 0).
    min_tags: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "taxonomy": self.taxonomy.to_json() if self.taxonomy else None,
            "per_group_max": self.per_group_max,
            "per_group_min": self.per_group_min,
            "min_tags": self.min_tags,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Rules:
        tax = Taxonomy.from_json(obj["taxonomy"]) if obj.get("taxonomy") else None
        pg_min = obj.get("per_group_min") or 0
        pg_min = {str(k): int(v) for k, v in pg_min.items()} if isinstance(pg_min, dict) else int(pg_min)
        pg_max = obj.get("per_group_max")
        pg_max = {str(k): int(v) for k, v in pg_max.items()} if isinstance(pg_max, dict) else pg_max
        return cls(tax, pg_max, pg_min, obj.get("min_tags"))

    def _per_group(self, option: str, value: int | dict[str, int] | None, names: list[str]) -> np.ndarray | int:
        if not isinstance(value, dict):
            return int(value or 0)
        unknown = sorted(set(value) - set(names) - {"*"})
        if unknown:
            source = self.taxonomy.source if self.taxonomy else "no taxonomy"
            raise AdtagError(
                f"{option}: no group {', '.join(map(repr, unknown))} in {source} (groups: {', '.join(names)})"
            )
        default = value.get("*", 0)
        return np.array([value.get(g, default) for g in names], dtype=np.int64)

    def group_mins(self, names: list[str]) -> np.ndarray | int:
        """``per_group_min`` as one number or an array over ``names``; a group the taxonomy lacks is an error."""
        return self._per_group("--per-group-min", self.per_group_min, names)

    def group_maxes(self, names: list[str]) -> np.ndarray | int:
        """``per_group_max`` as one number or an array over ``names`` (0: no cap); likewise checked."""
        return self._per_group("--per-group-max", self.per_group_max, names)

    def check_groups(self, names: list[str]) -> None:
        """Exit 2 (AdtagError) before any work when a per-group option names a group not in ``names``."""
        self.group_mins(names)
        self.group_maxes(names)


@dataclass
class Decider:
    tags: list[str]
    calibrator: Calibrator
    thresholds: Thresholds
    rules: Rules = field(default_factory=Rules)
    oof_scores: np.ndarray | None = None  # raw out-of-fold scores of the whole system (n, L)
    oof_truth: np.ndarray | None = None
    oof_ids: list[str] = field(default_factory=list)
    min_positives: int = 10
    metrics: dict[str, Any] = field(default_factory=dict)
    # Each tag's single-choice group (-1: none): groups where no training item has two tags.
    exclusive: np.ndarray | None = None
    # The K fusions refitted for the out-of-fold scores: new items are decided on their mean score.
    refits: list[Any] = field(default_factory=list)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        oof_scores: np.ndarray,
        truth: np.ndarray,
        tags: list[str],
        goal: Goal | str = "f1",
        *,
        ids: list[str] | None = None,
        rules: Rules | None = None,
        band: float = 0.1,
        min_positives: int = 10,
        prior: float = 10.0,
        calibration: str = "auto",
    ) -> Decider:
        goal = parse_goal(goal) if isinstance(goal, str) else goal
        rules = rules or Rules()
        if rules.taxonomy is not None:
            rules.taxonomy.check_vocabulary(tags)
        groups = rules.taxonomy.group_index(list(tags))[0] if rules.taxonomy else np.zeros(len(tags), np.int64)
        exclusive = single_choice_groups(np.asarray(truth) > 0, groups)
        cal = Calibrator(prior=prior, method=calibration).fit(normalise_groups(oof_scores, exclusive), truth)
        self = cls(
            tags=list(tags),
            calibrator=cal,
            thresholds=Thresholds(np.zeros(len(tags)), np.zeros(len(tags), bool), goal, 0.0),
            rules=rules,
            oof_scores=np.asarray(oof_scores, np.float32),
            oof_truth=(np.asarray(truth) > 0),
            oof_ids=list(ids or []),
            min_positives=min_positives,
            exclusive=exclusive,
        )
        return self.with_goal(goal, band)

    def with_goal(
        self, goal: Goal | str | None = None, band: float | None = None, rules: Rules | None = None
    ) -> Decider:
        """The same calibration with thresholds re-chosen on the stored out-of-fold scores."""
        if self.oof_scores is None:
            raise AdtagError("this model keeps no out-of-fold scores; retrain with 'adtag train --decide'")
        goal = parse_goal(goal) if isinstance(goal, str) else (goal or self.thresholds.goal)
        band = self.thresholds.band if band is None else band
        if not 0.0 <= band < 1.0:
            raise AdtagError(f"--review-band {band}: must lie in [0, 1)")
        rules = rules or self.rules
        if rules.taxonomy is not None:
            rules.taxonomy.check_vocabulary(self.tags)
        cal = self.calibrate(self.oof_scores)
        th = fit_thresholds(cal, self.oof_truth, goal, self.min_positives, band)
        new = replace(self, thresholds=th, rules=rules)
        decided = new.decide_calibrated(cal)
        new.metrics = {
            "goal": str(goal),
            "oof_ece_before": round(expected_calibration_error(self.oof_scores, self.oof_truth), 5),
            "oof_ece_after": round(expected_calibration_error(cal, self.oof_truth), 5),
            "calibration": self.calibrator.method_,
            "calibration_cv_ece": self.calibrator.cv_ece_,
            "oof_decisions": {k: round(v, 4) for k, v in decision_scores(decided, self.oof_truth).items()},
            "tags_with_own_threshold": int(th.own.sum()),
            "tags_never_decided": int((~np.isfinite(th.values)).sum()),
        }
        return new

    # ------------------------------------------------------------------ applying
    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        return self.calibrator.transform(normalise_groups(scores, self.exclusive))

    def decide_calibrated(self, cal: np.ndarray) -> np.ndarray:
        tax = self.rules.taxonomy
        groups, names = tax.group_index(self.tags) if tax else (None, [])
        parents = tax.parent_index(self.tags) if tax else None
        return apply_rules(
            cal,
            self.thresholds.decide(cal),
            groups,
            parents,
            self.rules.group_maxes(names),
            self.rules.group_mins(names),
            self.min_tags,
        )

    @property
    def min_tags(self) -> int:
        if self.rules.min_tags is not None:
            return self.rules.min_tags
        return 1 if self.thresholds.goal.kind == "f1" else 0

    def decide(
        self, scores: np.ndarray, decide_on: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw scores (n, L) -> calibrated scores, decided (n, L) and review (n, L); ``decide_on``: other raw
        scores to decide on (the layer's refits' mean, ``fit.scores_for_decisions``), the calibrated ones
        still those of ``scores``."""
        cal = self.calibrate(scores)
        on = cal if decide_on is None else self.calibrate(decide_on)
        return cal, self.decide_calibrated(on), self.thresholds.review(on)

    def explain_rows(self, scores: np.ndarray) -> list[dict[str, list[tuple[str, float]]]]:
        """Per item: decided tags and the review band, each as (tag, calibrated score), best first."""
        cal, decided, review = self.decide(scores)
        out = []
        for i in range(cal.shape[0]):
            order = np.argsort(-cal[i], kind="stable")
            out.append(
                {
                    "decided": [(self.tags[j], float(cal[i, j])) for j in order if decided[i, j]],
                    "review": [(self.tags[j], float(cal[i, j])) for j in order if review[i, j]],
                }
            )
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, model_dir: Path) -> None:
        model_dir = Path(model_dir)
        arrays = {f"calibration/{k}": v for k, v in self.calibrator.state().items()}
        arrays["thresholds"] = self.thresholds.values
        if self.exclusive is not None:
            arrays["exclusive"] = self.exclusive
        arrays["own_threshold"] = self.thresholds.own
        if self.oof_scores is not None:
            arrays["oof_scores"] = self.oof_scores
            arrays["oof_truth"] = self.oof_truth
        records = []
        for k, fusion in enumerate(self.refits):
            a, record = to_record(fusion)
            arrays.update({f"refit{k}/{name}": np.ascontiguousarray(v) for name, v in a.items()})
            records.append(record)
        with atomic_path(model_dir / ARRAYS_FILE) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        meta = {
            "tags": self.tags,
            "thresholds": self.thresholds.to_json(),
            "rules": self.rules.to_json(),
            "min_positives": self.min_positives,
            "calibration_prior": self.calibrator.prior,
            "calibration_method": self.calibrator.method_,
            "calibration_cv_ece": self.calibrator.cv_ece_,
            "oof_ids": self.oof_ids,
            "metrics": self.metrics,
            "refits": records,
        }
        write_json(model_dir / META_FILE, meta)

    @classmethod
    def exists(cls, model_dir: Path) -> bool:
        return (Path(model_dir) / META_FILE).is_file() and (Path(model_dir) / ARRAYS_FILE).is_file()

    @classmethod
    def load(cls, model_dir: Path) -> Decider:
        model_dir = Path(model_dir)
        if not cls.exists(model_dir):
            raise AdtagError(
                f"{model_dir}: the model has no decision layer ({META_FILE}); train it with 'adtag train --decide'"
            )
        try:
            meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
            with np.load(model_dir / ARRAYS_FILE, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            cal = Calibrator.from_state(
                {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("calibration/")}
            )
            cal.prior = float(meta.get("calibration_prior", 10.0))
            cal.method_ = str(meta.get("calibration_method", "tag-platt+isotonic"))
            cal.cv_ece_ = dict(meta.get("calibration_cv_ece") or {})
            th_meta = meta["thresholds"]
            pooled = th_meta.get("pooled")
            th = Thresholds(
                values=arrays["thresholds"],
                own=arrays["own_threshold"].astype(bool),
                goal=parse_goal(th_meta["goal"]),
                pooled=np.inf if pooled is None else float(pooled),
                band=float(th_meta.get("band", 0.1)),
            )
            return cls(
                tags=list(meta["tags"]),
                calibrator=cal,
                thresholds=th,
                rules=Rules.from_json(meta.get("rules") or {}),
                oof_scores=arrays.get("oof_scores"),
                oof_truth=arrays["oof_truth"].astype(bool) if "oof_truth" in arrays else None,
                oof_ids=list(meta.get("oof_ids", [])),
                min_positives=int(meta.get("min_positives", 10)),
                metrics=meta.get("metrics", {}),
                exclusive=arrays.get("exclusive"),
                refits=_load_refits(meta.get("refits") or [], arrays),
            )
        except (KeyError, ValueError, TypeError, OSError, json.JSONDecodeError) as exc:
            raise AdtagError(f"{model_dir}: the decision layer is unreadable ({type(exc).__name__}: {exc})") from None


def _load_refits(records: list[dict[str, Any]], arrays: dict[str, np.ndarray]) -> list[Any]:
    """The refitted fusions from their component records (a folder saved before they were kept has none)."""
    if not records:
        return []
    import adtag.models.persist  # noqa: F401  (registers the fusion classes a record may name)

    out = []
    for k, record in enumerate(records):
        prefix = f"refit{k}/"
        out.append(from_record(record, {n[len(prefix) :]: v for n, v in arrays.items() if n.startswith(prefix)}))
    return out


def decided_fields(tagger: Any, items: list) -> list[dict[str, list[dict[str, float | str]]]]:
    """Per item ``{"decided": [...], "review": [...]}`` ({tag, score} with calibrated scores), or
    empty dicts when the tagger's model folder has no decision layer: for ``adtag tag`` and the service."""
    decider = getattr(tagger, "decider_", None)
    if decider is None:
        return [{} for _ in items]
    from adtag.decisions.fit import scores_for_decisions

    rows = decider.explain_rows(scores_for_decisions(tagger, items)[1])
    return [{k: [{"tag": t, "score": round(s, 4)} for t, s in r[k]] for k in ("decided", "review")} for r in rows]
