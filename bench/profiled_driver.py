"""`dra-kwok run` under cProfile in *every* thread: `python bench/profiled_driver.py OUT.prof run --flags...`.

Why not `python -m cProfile -o OUT -m dra_kwok run ...`: that does write its file when the driver exits on SIGTERM
(cProfile catches the SystemExit), but cProfile only profiles the thread that enabled it, and dra-kwok's main
thread only waits on an Event while informer, worker and HTTP threads do all the work; the file then shows
`Event.wait` and nothing else. Python 3.11 has no `threading.setprofile_all_threads`, so this wrapper gives each
thread its own `cProfile.Profile` (one profiler object cannot be shared: its call stack is per object) by wrapping
`threading.Thread.run`, runs the real CLI entry point in the main thread under another, and on exit merges them
all into OUT (pstats format; `python -m pstats OUT`). SIGUSR1 closes a *segment*: what every thread's profiler has
collected so far is written to OUT.<n> (n = 1, 2, ...) and the profilers are cleared, so that the benchmark can
profile its phases (startup, convergence, config change) separately in one process. Times are per thread and add up across threads, so a
function's cumulative time can exceed the wall time of the run; time a thread spent waiting for the GIL is charged
to whatever it was running.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import sys
import threading
from typing import Callable

_profiles: list[tuple[str, cProfile.Profile]] = []
_lock = threading.Lock()
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    prof = cProfile.Profile()
    with _lock:
        _profiles.append((self.name, prof))
    prof.enable()
    try:
        _original_run(self)
    finally:
        prof.disable()


def _merge(profiles: list[tuple[str, cProfile.Profile]], final: bool) -> pstats.Stats:
    stats = pstats.Stats()
    for _name, prof in profiles:
        try:
            if final:
                stats.add(prof)  # create_stats(): disables it first (a no-op for threads that have finished)
            else:
                prof.snapshot_stats()  # the profiler stays enabled in its own thread
                part = pstats.Stats()
                part.stats = prof.stats
                part.get_top_level_stats()
                stats.add(part)
        except Exception as err:  # an empty profile of a thread that never ran
            print(f"profiled_driver: skipped a thread profile: {err}", file=sys.stderr)
    return stats


def _segment(out: str) -> Callable[..., None]:
    count = [0]

    def handler(*_: object) -> None:
        # Runs in the main thread, between bytecodes: no other thread holds the GIL, so reading and clearing the
        # other threads' profilers is safe (clear() drops their call stacks; frames that return later are ignored).
        count[0] += 1
        with _lock:
            profiles = list(_profiles)
        _merge(profiles, final=False).dump_stats(f"{out}.{count[0]}")
        for _name, prof in profiles:
            prof.clear()
        print(f"profiled_driver: wrote segment {out}.{count[0]}", file=sys.stderr, flush=True)

    return handler


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _segment(out))
    from dra_kwok.cli import main as cli

    main_prof = cProfile.Profile()
    _profiles.append(("MainThread", main_prof))
    code: int | str | None = 0
    main_prof.enable()
    try:
        cli.main(args=argv, prog_name="dra-kwok", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
    finally:
        main_prof.disable()
    with _lock:
        profiles = list(_profiles)
    _merge(profiles, final=True).dump_stats(out)
    print(f"profiled_driver: wrote {out} ({len(profiles)} thread profiles)", file=sys.stderr)
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)  # daemon threads may still be blocked in reads


if __name__ == "__main__":
    sys.exit(main())
