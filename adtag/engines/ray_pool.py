"""A pool of Ray actors that survives dead actors and dead nodes.

Each actor holds what is costly to load (encoders, a trained Tagger) and gets one task at a time,
so a death is blamed on exactly one task. A task whose actor died is retried once on a
replacement; a second death records it as failed and the batch goes on. Replacements are only
given work once they have started (``ready``), so a replacement that finds no room on the
cluster never holds a task hostage.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from adtag.errors import AdtagError

DIED = "the Ray worker running it died twice (a crash, out of memory, or its node was lost)"


def run_actor_pool(
    ray,
    make_actor: Callable[[], Any],
    tasks: list[Any],
    submit: Callable[[Any, Any], Any],
    on_result: Callable[[Any, Any], None],
    on_lost: Callable[[Any, str], None],
    workers: int,
    start_timeout: float = 600.0,
    notify: Callable[[str], None] | None = None,
    describe: Callable[[Any], str] = str,
) -> None:
    """Run every task on a pool of ``workers`` actors; results arrive through ``on_result(task, value)``.

    ``make_actor()`` returns a new actor handle whose ``ready()`` method returns once it can work
    (and raises, e.g. when it cannot reach the store: that stops the run with its message).
    ``submit(actor, task)`` returns the ObjectRef of one call. ``on_lost(task, reason)`` records a
    task given up after its worker died twice; ``notify(message)`` hears about retries (``describe(task)``
    names a task there). Raises AdtagError when no actor can start for
    ``start_timeout`` seconds.
    """
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

    queue = deque(tasks)
    deaths: dict[int, int] = {}
    starting: dict[Any, Any] = {}  # ready ref -> actor
    idle: list[Any] = []
    running: dict[Any, tuple[Any, Any]] = {}  # result ref -> (actor, task)
    replaced = 0
    last_progress = time.monotonic()

    def start_one() -> None:
        actor = make_actor()
        starting[actor.ready.remote()] = actor

    for _ in range(max(1, min(workers, len(tasks)))):
        start_one()
    try:
        while queue or running:
            while idle and queue:
                actor, task = idle.pop(), queue.popleft()
                running[submit(actor, task)] = (actor, task)
            if not running and not starting:
                start_one()
            refs = list(running) + list(starting)
            ready, _ = ray.wait(refs, num_returns=1, timeout=5.0)
            if not ready:
                if not running and time.monotonic() - last_progress > start_timeout:
                    raise AdtagError(
                        f"no Ray worker could start in {start_timeout:.0f} s (no free CPU on the cluster?)"
                    )
                continue
            ref = ready[0]
            last_progress = time.monotonic()
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                except RayTaskError as exc:  # the actor started but cannot work here: stop with its reason
                    cause = exc.as_instanceof_cause()
                    raise AdtagError(str(getattr(cause, "args", [cause])[0] if cause.args else cause)) from None
                except RayActorError:
                    replaced += 1
                    if replaced > 2 * workers + len(tasks):
                        raise AdtagError("Ray workers keep dying while loading the models (out of memory?)") from None
                    start_one()
                    continue
                idle.append(actor)
                continue
            actor, task = running.pop(ref)
            try:
                value = ray.get(ref)
            except RayActorError:
                key = id(task)
                deaths[key] = deaths.get(key, 0) + 1
                if deaths[key] >= 2:
                    on_lost(task, DIED)
                else:
                    queue.appendleft(task)
                    if notify:
                        notify(f"a Ray worker died while on {describe(task)}; starting another and retrying it once")
                ray.kill(actor, no_restart=True)
                replaced += 1
                start_one()
                continue
            except RayTaskError as exc:  # an exception the actor method did not turn into a result
                on_lost(task, f"{type(exc.cause).__name__}: {exc.cause}" if exc.cause else str(exc))
                idle.append(actor)
                continue
            except GetTimeoutError:  # pragma: no cover - ray.wait said it was ready
                running[ref] = (actor, task)
                continue
            on_result(task, value)
            idle.append(actor)
    finally:
        for actor in [*idle, *starting.values(), *(a for a, _ in running.values())]:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
