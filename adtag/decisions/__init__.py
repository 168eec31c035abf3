"""From rankings to decisions: calibrated scores, per-tag thresholds, taxonomy rules, the audit.

Everything here is fitted on out-of-fold predictions of the whole system (the stacker's own
held-out scores on the training items), never on in-sample ones.
"""
