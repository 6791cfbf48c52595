"""Where the engine's image tasks run: the local pool (reproduce.evaluation.engine) or a Dask cluster.

    rsicbench sweep --codec jpeg --executor dask --scheduler tcp://head:8786
    rsicbench sweep --codec jpeg --executor dask --scheduler local --workers 4   # LocalCluster here

`SweepSpec.executor = "dask"` sends every (image, rate point) task of `engine._tasks` to the
scheduler at `SweepSpec.scheduler` ("local" = a LocalCluster of `workers` processes x 1
thread started for this run). The task is `engine.evaluate_image`, unchanged: each worker
process builds a codec and a MetricSuite once (the engine's per-process caches) and writes
the image's recon PNG and its part record atomically, so the results folder is the same as
the local pool's and a rerun resumes from the parts. The parent gathers the rows and
assembles per_image.csv / summary.json as for the local pool.

Contract with the cluster: workers see the input images and the results folder at the same
absolute paths as the client (a shared filesystem; checked before any task is sent), and
run the same rsicbench version. A worker lost mid-run: the scheduler reruns its unfinished
tasks elsewhere; a task that kills `distributed.scheduler.allowed-failures` workers is
recorded as that image's error (part written, retried on the next run), the others go on.
Start workers with one thread each (`dask worker ADDR --nworkers N --nthreads 1`): codecs
whose thread safety is unknown run one at a time per worker process anyway (a lock).

dask is imported only here, only when this executor is chosen.
"""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
import uuid
from pathlib import Path
from typing import Any, Iterator

EXECUTORS = ("local", "dask")
ENV_EXECUTOR, ENV_SCHEDULER = "RSICBENCH_EXECUTOR", "RSICBENCH_SCHEDULER"
CONNECT_TIMEOUT_S = 30.0  # reaching the scheduler
WORKER_WAIT_S = 120.0  # for the first worker to join


class ExecutorError(RuntimeError):
    """The executor cannot run the tasks (scheduler unreachable, no worker, no shared filesystem)."""


def check_executor(executor: str, scheduler: str | None) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if executor == "dask" and not scheduler:
        raise ValueError("executor dask needs a scheduler address (--scheduler tcp://HOST:8786, or 'local')")


def add_executor_args(ap) -> None:
    ap.add_argument("--executor", choices=EXECUTORS,
                    help=f"local pool or Dask cluster (default: ${ENV_EXECUTOR}, else configs/eval.yaml executor)")
    ap.add_argument("--scheduler", metavar="ADDRESS",
                    help="Dask scheduler, e.g. tcp://head:8786, or 'local' (a LocalCluster of --workers processes)")


def executor_settings(args, cfg: dict) -> dict[str, Any]:
    """SweepSpec's executor/scheduler: the command line, else the environment, else `cfg`; checked.

    The environment sits above the config so `RSICBENCH_EXECUTOR=dask RSICBENCH_SCHEDULER=...
    dvc repro` moves a pipeline onto a cluster without touching a DVC param (same numbers)."""
    executor = args.executor or os.environ.get(ENV_EXECUTOR) or cfg.get("executor") or "local"
    scheduler = args.scheduler or os.environ.get(ENV_SCHEDULER) or cfg.get("scheduler")
    check_executor(executor, scheduler)
    return {"executor": executor, "scheduler": scheduler}


# ----------------------------------------------------------------------------- worker side
_INIT_LOCK = threading.Lock()
_SERIAL = threading.Lock()  # one non-thread-safe codec call at a time per worker process
_threads_set: list[int] = []


def _set_threads(threads: int) -> None:
    # as engine._init_worker, minus its die-with-parent: a Dask worker's life is its nanny's business
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(int(threads))
    except ImportError:  # torch is only needed by learned codecs and LPIPS
        pass


def evaluate_on_worker(task: dict[str, Any], threads: int, serial: bool) -> dict[str, Any]:
    from rsicbench.reproduce.evaluation import engine
    with _INIT_LOCK:
        if _threads_set != [threads]:
            _set_threads(threads)
            _threads_set[:] = [threads]
    if not serial:
        return engine.evaluate_image(task)
    with _SERIAL:
        return engine.evaluate_image(task)


def missing_paths(paths: list[str]) -> list[str]:
    """The paths this process cannot see (run on every worker before the tasks)."""
    return [p for p in paths if not os.path.exists(p)]


# ----------------------------------------------------------------------------- client side
def _import_dask():
    try:
        from distributed import Client, KilledWorker, LocalCluster, as_completed
    except ImportError as e:
        raise ExecutorError(f"the dask executor needs dask[distributed] ({e}); "
                            f"pip install 'dask[distributed]'") from None
    return Client, LocalCluster, as_completed, KilledWorker


@contextlib.contextmanager
def connect(scheduler: str, workers: int) -> Iterator[Any]:
    """A Client on `scheduler` with at least one worker ('local': a LocalCluster of `workers`)."""
    Client, LocalCluster, _, _ = _import_dask()
    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            cluster = stack.enter_context(LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1,
                                                       processes=True, dashboard_address=None,
                                                       worker_dashboard_address=None))
            scheduler = cluster.scheduler_address
        try:
            client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT_S))
        except (OSError, TimeoutError) as e:
            raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise ExecutorError(f"no Dask worker joined the scheduler at {scheduler} "
                                f"within {WORKER_WAIT_S:.0f} s") from None
        yield client


def _absolute(task: dict[str, Any]) -> dict[str, Any]:
    # workers may run in another directory: every file of the task by its absolute path
    out = dict(task)
    for k in ("path", "part", "roi", "recon"):
        if out.get(k):
            out[k] = os.path.abspath(out[k])
    return out


def _check_shared(client, tasks: list[dict], point_dirs: list[Path]) -> None:
    for d in point_dirs:
        d.mkdir(parents=True, exist_ok=True)
    probe = sorted({tasks[0]["path"], *(str(d.resolve()) for d in point_dirs)})
    for worker, missing in client.run(missing_paths, probe).items():
        if missing:
            raise ExecutorError(f"Dask worker {worker} cannot see {missing[0]}: the dask executor needs the "
                                f"images and the results folder on a filesystem shared with the workers, "
                                f"at the same absolute paths")


def _lost_row(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    from rsicbench.fsutil import write_json

    row = {"image": task["relpath"], "key": task["key"], "qtag": task["qtag"],
           "error": f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500],
           "traceback": "".join(traceback.format_exception_only(type(exc), exc))}
    write_json(task["part"], row)  # an error part: reported now, retried by the next run
    return row


def run_dask(todo: list[dict[str, Any]], spec) -> Iterator[dict[str, Any]]:
    """engine.evaluate_image over `todo` on the Dask cluster of `spec.scheduler`; rows as they finish."""
    from rsicbench.reproduce.evaluation.engine import _parallel_mode, _stem

    check_executor(spec.executor, spec.scheduler)
    _, _, as_completed, KilledWorker = _import_dask()
    tasks = [_absolute(t) for t in todo]
    serial = _parallel_mode(spec) == "process"  # the local pool's rule: not safe in threads
    run_id = uuid.uuid4().hex[:8]
    with connect(spec.scheduler, spec.workers) as client:
        _check_shared(client, tasks, [spec.point_dir(p) for p in spec.points])
        keys = [f"rsicbench-{run_id}-{t['qtag']}-{_stem(t['relpath'])}-{i}" for i, t in enumerate(tasks)]
        futures = client.map(evaluate_on_worker, tasks, key=keys, threads=int(spec.threads), serial=serial)
        task_of = {f.key: t for f, t in zip(futures, tasks)}
        pending = as_completed(futures)
        del futures  # `pending` holds them until done; each is released once its row is out
        for fut in pending:
            try:
                row = fut.result()
            except KilledWorker as e:  # the task killed too many workers: this image's error, not the run's
                row = _lost_row(task_of.pop(fut.key), e)
            else:
                task_of.pop(fut.key)
            fut.release()
            yield row
