"""The local engine: this process runs jobs beside its worker processes, results in input order; the
processes of a command on vector features never import scikit-learn (the folds are its KFold, made here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from adtag.engines.local import run_parallel
from adtag.models.branch import make_folds


def _where(i: int, pause: float) -> tuple[int, int, int]:
    import torch

    time.sleep(pause)
    return i, os.getpid(), torch.get_num_threads()


def _fails(i: int) -> int:
    if i == 3:
        raise ValueError(f"job {i} failed")
    return i


def test_this_process_runs_jobs_beside_a_worker_results_in_input_order():
    import torch

    torch.set_num_threads(2)
    try:
        jobs = [(i, 0.3 if i % 2 else 0.05) for i in range(8)]
        out = list(run_parallel(_where, jobs, n_jobs=2))
        assert [i for i, _, _ in out] == list(range(8))
        pids = {pid for _, pid, _ in out}
        assert os.getpid() in pids and len(pids) == 2  # this process and one worker, no second worker
        assert {t for _, _, t in out} == {1}  # one thread per job, here as in the worker
        assert torch.get_num_threads() == 2  # this process's own setting is back after its jobs
    finally:
        torch.set_num_threads(1)


def _imported(i: int, module: str) -> tuple[int, bool]:
    time.sleep(0.3)  # both processes take a job
    return os.getpid(), module in sys.modules


def test_prestart_starts_the_worker_that_the_next_map_uses_with_its_imports_done():
    from adtag.engines import local

    module = next(m for m in ("tabnanny", "pyclbr", "netrc", "tomllib") if m not in sys.modules)  # nothing imports it
    local.prestart(2, module)
    pool = local._POOL
    assert pool is not None and module not in sys.modules
    out = list(run_parallel(_imported, [(i, module) for i in range(4)], n_jobs=2))
    assert local._POOL is pool  # the map ran on the started worker, not a new one
    in_worker = [seen for pid, seen in out if pid != os.getpid()]
    assert in_worker and all(in_worker)  # the worker imported it before its first job


def test_a_closure_travels_by_value_and_a_failing_job_raises():
    offset = 10
    assert list(run_parallel(lambda x: x + offset, [(i,) for i in range(5)], n_jobs=2)) == [10, 11, 12, 13, 14]
    with pytest.raises(ValueError, match="job 3 failed"):
        list(run_parallel(_fails, [(i,) for i in range(6)], n_jobs=2))
    assert list(run_parallel(_fails, [(0,), (1,)], n_jobs=2)) == [0, 1]  # the workers still serve


def _dies_in_a_worker(i: int, main: int, flag: str, size: np.ndarray) -> int:
    if os.getpid() != main:
        open(flag, "w").close()
        os._exit(1)  # a worker killed mid-job (out of memory, a crash)
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:  # this process's job outlasts the worker
        time.sleep(0.05)
    time.sleep(0.5)
    return i


def test_a_dead_worker_raises_and_the_next_map_gets_new_workers(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    # the worker takes the last job (the largest) and dies while this process runs job 0: job 1, which the
    # worker would take next, cannot start, and the map raises when its turn comes
    flag = str(tmp_path / "died")
    jobs = [(i, os.getpid(), flag, np.zeros(1000 if i == 5 else 100 - i)) for i in range(6)]
    with pytest.raises(BrokenProcessPool):
        list(run_parallel(_dies_in_a_worker, jobs, n_jobs=2))
    assert list(run_parallel(_fails, [(0,), (1,), (2,)], n_jobs=2)) == [0, 1, 2]


def _start(a: np.ndarray, small: np.ndarray) -> tuple[int, int, bool, bool]:
    return os.getpid(), a.ctypes.data % 4096, bool(np.array_equal(a, np.arange(a.size, dtype=np.float32))), small.size


def test_large_arrays_reach_every_job_page_aligned():
    """Where an array starts moves BLAS's last bits: a job's large arrays start on a page boundary (as joblib's
    memory maps did), in the worker as in this process, with the same values; small ones travel as they are."""
    from adtag.engines.local import ALIGNED_BYTES

    n = ALIGNED_BYTES // 4 + 3
    jobs = [(np.arange(n, dtype=np.float32), np.zeros(7)) for _ in range(6)]
    out = list(run_parallel(_start, jobs, n_jobs=2))
    assert {pid for pid, *_ in out} >= {os.getpid()}  # some ran here, the others in the worker
    assert all(offset == 0 and same and size == 7 for _, offset, same, size in out)


def test_folds_are_scikit_learns_kfold_index_for_index():
    from sklearn.model_selection import KFold

    for n, k, seed in [(500, 5, 101), (10, 3, 0), (7, 5, 3), (2, 5, 1), (1001, 7, 42)]:
        ours = make_folds(n, k, seed)
        theirs = list(KFold(max(2, min(k, n)), shuffle=True, random_state=seed).split(np.arange(n)))
        assert len(ours) == len(theirs)
        for (tr, te), (tr2, te2) in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(tr, tr2)
            np.testing.assert_array_equal(te, te2)
            assert tr.dtype == tr2.dtype and te.dtype == te2.dtype


def test_ablation_and_training_modules_leave_scikit_learn_and_scipy_optimize_unimported():
    code = (
        "import sys, adtag.cli, adtag.commands.ablate, adtag.ablation, adtag.ablation_report, adtag.models.stacker;"
        "from adtag.models.branch import make_folds; make_folds(50, 5, 0);"
        "print(sorted(m for m in ('sklearn', 'pandas', 'scipy.stats', 'scipy.optimize') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
