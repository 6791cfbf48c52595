"""`rsicbench train-submit`: one `rsicbench train` job per model x rate, on Slurm or here.

    rsicbench train-submit --models mbt2018 cheng2020-attn --profile paper \\
        --executor slurm --partition gpu --gpus-per-node 4 --timeout-min 4320
    rsicbench train-submit --models bmshj2018-hyperprior --rates r0 --executor local --wait

Each job runs one rate (with configs/train.yaml `train.finetune`: all of a model's rates, the
anchor first, since the others start from its weights) of what the DVC stage `train@<model>` runs (`rsicbench train --model M
--rate r<i>`, same profile; the stage runs every rate of the profile, configs/train.yaml `rates`,
which is also the default here), writing results/train/<model>/r<i>/ of this project (inside the
stage's output), so DVC stays the record: afterwards `dvc repro train@<model>` finds each
latest.pt at the last step and only records the files. Jobs are submitit `Checkpointable`:
on preemption or time-out (Slurm sends USR2 before killing; `--executor local` does the same
at its own time limit) the job requeues itself and the rerun resumes from latest.pt (written
every `ckpt_every` steps, so at most that many steps are redone). With several GPUs per node
or several nodes, the job's tasks train as one DDP run (one task per GPU, submitit's
TorchDistributedEnvironment; rank 0 writes the checkpoints). Job logs and pickles go to
--folder (default results/submitit/<job id>).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

DEFAULT_FOLDER = "results/submitit/%j"


class TrainJob(Checkpointable):
    """One `rsicbench train` run in a submitit job. Checkpointable: on USR2 (preemption, time
    limit) submitit calls `checkpoint`, which resubmits this same call; the resume itself lives
    in latest.pt, so nothing else needs saving here."""

    def __init__(self, root: str, argv: list[str]):
        self.root, self.argv = root, list(argv)

    def __call__(self) -> dict[str, Any]:
        import submitit

        os.environ["RSICBENCH_ROOT"] = self.root  # the project whose configs and results/ the stage uses
        if submitit.JobEnvironment().num_tasks > 1:  # one task per GPU: one DDP run (RANK, WORLD_SIZE, LOCAL_RANK)
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        from rsicbench.reproduce.commands import train as cli_train
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = cli_train.main(self.argv)
        print(buf.getvalue(), end="", flush=True)
        if rc != 0:
            raise RuntimeError(f"rsicbench train {' '.join(self.argv)}: exit status {rc} (see the job's stderr)")
        return json.loads([ln for ln in buf.getvalue().splitlines() if ln.startswith("{")][-1])


def make_executor(args: argparse.Namespace, folder: str):
    import submitit

    if args.executor == "slurm":
        if shutil.which("sbatch") is None:
            raise ValueError("--executor slurm needs Slurm (sbatch not found on PATH); --executor local runs here")
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=args.max_requeue)
        extra = dict(kv.partition("=")[::2] for kv in args.slurm_arg)
        ex.update_parameters(slurm_partition=args.partition, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                             tasks_per_node=max(1, args.gpus_per_node), cpus_per_task=args.cpus_per_task,
                             mem_gb=args.mem_gb, timeout_min=args.timeout_min, slurm_additional_parameters=extra)
        return ex
    ex = submitit.LocalExecutor(folder=folder, max_num_timeout=args.max_requeue)
    ex.update_parameters(timeout_min=args.timeout_min, signal_delay_s=args.signal_delay_s, tasks_per_node=1)
    return ex


def job_argv(model: str, rate: str, profile: str, out: Path, args: argparse.Namespace) -> list[str]:
    """`rate` is one tag, or several (r1,r0,r2: fine-tuned rates after their anchor, one job)."""
    if "," in rate:
        argv = ["--model", model, "--rates", rate, "--profile", profile, "--quiet"]
    else:
        argv = ["--model", model, "--rate", rate, "--profile", profile, "--out", str(out), "--quiet"]
    for flag, folder in (("--train-dir", args.train_dir), ("--val-dir", args.val_dir)):
        if folder:
            argv += [flag, str(Path(folder).resolve())]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    for kv in args.set:
        argv += ["--set", kv]
    return argv


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rsicbench train-submit", description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--rates", nargs="+", help="rate tags r<i> (default: the profile's, configs/train.yaml rates)")
    ap.add_argument("--profile", help="ci | default | paper (default: params.yaml / $RSICBENCH_PROFILE)")
    ap.add_argument("--executor", choices=("slurm", "local"), default="slurm")
    ap.add_argument("--folder", default=DEFAULT_FOLDER, help="submitit logs and pickles (default results/submitit/%%j: one folder per job id)")
    ap.add_argument("--wait", action="store_true", help="wait for the jobs and print their results")
    ap.add_argument("--timeout-min", type=int, default=4320, help="job time limit; the job requeues itself at it")
    ap.add_argument("--max-requeue", type=int, default=30, help="time-outs/preemptions a job may requeue after")
    ap.add_argument("--signal-delay-s", type=int, default=90,
                    help="local executor: warn the job this long before its limit")
    ap.add_argument("--partition")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--gpus-per-node", type=int, default=1, help="one task (DDP rank) per GPU")
    ap.add_argument("--cpus-per-task", type=int, default=8)
    ap.add_argument("--mem-gb", type=int, default=64)
    ap.add_argument("--slurm-arg", action="append", default=[], metavar="KEY=VALUE", help="extra #SBATCH option")
    ap.add_argument("--steps", type=int, help="passed to rsicbench train")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="passed to rsicbench train")
    ap.add_argument("--train-dir")
    ap.add_argument("--val-dir")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rsicbench.config import active_profile, settings
    from rsicbench.paths import project_root
    from rsicbench.reproduce.training.run_config import anchors_first, finetune_source, run_config
    from rsicbench.results import model_runs_dir, run_dir

    try:
        profile = active_profile(args.profile)
        cfg = settings("train", profile)
        runs = []
        for model in args.models:
            mine = [f"r{i}" for i in cfg.get("models", {}).get(model, {}).get("rates", [])]  # the profile's, as the stage
            tags = args.rates or mine or ["r0"]  # (r0: the error of an unknown model)
            for rate in tags:
                run_config(model, rate, cfg)  # unknown model / rate: one clear error before anything is submitted
            if finetune_source(cfg, model) and len(tags) > 1:
                # train.finetune: the other rates start from the anchor's weights, so one job runs them in order
                runs.append((model, ",".join(anchors_first(tags, cfg, model))))
            else:
                runs.extend((model, rate) for rate in tags)
        root = project_root()
        folder = args.folder if Path(args.folder).is_absolute() else str(root / args.folder)
        executor = make_executor(args, folder)
    except (ValueError, RuntimeError) as e:
        print(f"rsicbench train-submit: {e}", file=sys.stderr)
        return 2
    jobs = []
    for model, rate in runs:
        out = model_runs_dir(model, root) if "," in rate else run_dir(model, rate, root)  # the stage's
        executor.update_parameters(name=f"rsicbench-train-{model}-{rate}")
        job = executor.submit(TrainJob(str(root), job_argv(model, rate, profile, out, args)))
        jobs.append((model, rate, out, job))
        print(f"submitted {model} {rate}: job {job.job_id} -> {out}")
    if not args.wait:
        return 0
    failed = 0
    for model, rate, out, job in jobs:
        try:
            print(json.dumps({"job": job.job_id, **job.result()}, sort_keys=True))
        except Exception as e:  # a failed job: report it, wait for the others
            failed += 1
            print(f"rsicbench train-submit: {model} {rate} (job {job.job_id}) failed: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
