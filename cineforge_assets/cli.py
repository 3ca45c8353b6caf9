"""``cineforge``: the command line over the same Dagster instance the UI shows.

``cineforge ingest FILE`` registers the file as a partition and materializes the pipeline for it;
the last line printed is one JSON object a script can parse.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from cineforge_assets.asset_names import BROLL_ASSET_NAME, INGEST_ASSET_NAMES, PIPELINE_ASSET_NAMES
from cineforge_assets.run_tags import (
    CLI_INVOCATION_TAG,
    PARTITION_TAG,
    PROVIDER_TAG,
    RESUMED_FROM_TAG,
    SOURCE_PATH_TAG,
    SOURCE_SHA256_TAG,
    SOURCE_TAG,
    STEPPED_BACK_TO_TAG,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXIT_CODES = """exit codes:
  0  success
  1  the run failed (stderr says where, why, and the command that resumes it)
  2  bad usage, unknown run id, or a run that cannot be resumed (not failed; providers unreachable)
  3  refused input: the file cannot be read, is a link, or is over a size limit, or its partition
     holds a differently named source (--replace); no run was started

Dagster's own event log goes to a file under $DAGSTER_HOME/logs/ (its path is printed); --verbose
shows it on the terminal instead. NO_COLOR=1 turns colour off."""
EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_REFUSED_INPUT = 0, 1, 2, 3


def ensure_dagster_home() -> Path:
    """Use ``$DAGSTER_HOME`` or ``./.dagster_home``; seed it with the project's ``dagster.yaml``."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    template = REPO_ROOT / "dagster.yaml"
    if template.exists() and not (home / "dagster.yaml").exists():
        shutil.copyfile(template, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def dagster_log_path(home: Path, command: str, now: float | None = None) -> Path:
    """Where one command's Dagster event stream goes: ``$DAGSTER_HOME/logs/<command>-<UTC time>-<pid>.log``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return home / "logs" / f"{command}-{stamp}-{os.getpid()}.log"


def _person_stream(stack: contextlib.ExitStack) -> IO[str]:
    """stderr as the person sees it, kept apart from the file descriptor 2 that Dagster's output is moved off.

    When ``sys.stderr`` is the process's real stderr, a duplicate of descriptor 2 is opened for the person:
    while a run executes, descriptor 2 itself points at the log file, so output of step subprocesses and
    of C code lands there too. Otherwise (stderr already captured, e.g. under pytest) ``sys.stderr`` is it.
    """
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return sys.stderr
    if descriptor != 2:
        return sys.stderr
    sys.stderr.flush()
    stream = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")
    stack.callback(stream.close)
    return stream


@contextlib.contextmanager
def _stderr_to(log_path: Path) -> Iterator[None]:
    """Send everything written to stderr meanwhile (Python's and, if it is the real one, descriptor 2) to
    ``log_path``: Dagster's console logger writes every event there, ``DEBUG`` included."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:
        saved: int | None = None
        try:
            real = sys.stderr.fileno() == 2
        except (AttributeError, OSError, io.UnsupportedOperation):
            real = False
        if real:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stderr(log):
                yield
        finally:
            log.flush()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)


class RunOutput:
    """What one ``ingest`` / ``resume`` shows: stage lines while the run executes, plain words after it;
    Dagster's event stream goes to a log file (``verbose``: to the terminal, as Dagster prints it)."""

    def __init__(self, stack: contextlib.ExitStack, home: Path, command: str, *, verbose: bool) -> None:
        from cineforge_assets.console import wants_color

        self.verbose = verbose
        self.stream = _person_stream(stack)
        self.color = wants_color()
        self.log_path: Path | None = None if verbose else dagster_log_path(home, command)
        self.token = uuid.uuid4().hex
        self._said_log = False

    @property
    def tags(self) -> dict[str, str]:
        return {CLI_INVOCATION_TAG: self.token}

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    @contextlib.contextmanager
    def executing(self, instance: Any) -> Iterator[None]:
        """Around the run's execution: Dagster's output to the log file, stage lines to the person."""
        if self.log_path is None:
            yield
            return
        if not self._said_log:
            self.say(f"Dagster's log: {self.log_path}")
            self._said_log = True
        from cineforge_assets.cli_events import RunWatcher
        from cineforge_assets.console import ProgressDisplay

        display = ProgressDisplay(self.stream, color=self.color)
        with RunWatcher(instance, self.token, display), _stderr_to(self.log_path):
            yield

    def summarize(self, instance: Any, summary: dict[str, Any]) -> None:
        """Plain words before the JSON line: per AI stage who served it and what happened; on failure the
        stage, the class in words, the request id and the command that resumes the run."""
        from cineforge_assets.cli_events import run_story
        from cineforge_assets.console import resume_command, summary_lines

        run_id = summary.get("run_id")
        if not run_id:
            return
        resume = None if summary.get("success") else resume_command(run_id, os.environ, _program_name())
        attempts, transitions = run_story(instance, run_id)
        for line in summary_lines(summary, attempts, resume=resume, transitions_by_stage=transitions):
            self.say(line)


def _program_name() -> str:
    """How this command was invoked, so the printed resume command runs as it is."""
    invoked = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("cineforge")
    return str(invoked) if invoked.name == "cineforge" else "cineforge"


def _ai_run_config(provider: str, simulator_url: str | None) -> dict[str, Any]:
    if provider in ("auto", "keep"):
        return {}
    from cineforge_assets.resource_config import ai_run_config

    return ai_run_config(provider, simulator_url)


@contextlib.contextmanager
def _maybe_simulator(provider: str, faults: str, seed: int) -> Iterator[str | None]:
    if provider != "simulated" or os.environ.get("CINEFORGE_SIMULATOR_URL"):
        yield os.environ.get("CINEFORGE_SIMULATOR_URL") if provider == "simulated" else None
        return
    from resources.simulator import ProviderSimulator

    with ProviderSimulator(profile=faults, seed=seed) as sim:
        yield sim.base_url


def _failure_reason(instance: Any, run_id: str) -> dict[str, Any]:
    """The classified reason of a failed run, read back from its event log."""
    from dagster import DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data if event else None
        if data is None:
            continue
        metadata = (
            {k: getattr(v, "value", v) for k, v in (data.user_failure_data.metadata or {}).items()}
            if (data.user_failure_data)
            else {}
        )
        description = (data.user_failure_data.description if data.user_failure_data else None) or (
            data.error.message.strip() if data.error else "step failed"
        )
        return {
            "step": event.step_key if event else None,
            "error_class": metadata.get("error_class", "unknown"),
            "message": description,
            **{k: metadata[k] for k in ("provider", "model", "request_id", "error_code") if k in metadata},
        }
    return {"error_class": "unknown", "message": "run failed"}


def _spend(instance: Any, run_id: str | None) -> dict[str, Any]:
    """``cost_usd`` (the run's total), ``fallback_premium_usd`` and per stage who served it and at what cost,
    from the run's spend tags (``cineforge_assets.run_events.tag_spend``)."""
    from cineforge_assets.run_events import spend_from_tags

    run = instance.get_run_by_id(run_id) if run_id else None
    return spend_from_tags(run.tags if run is not None else {})


def _finish(instance: Any, summary: dict[str, Any], what: str, output: RunOutput) -> int:
    """The summary in words on stderr (with the classified reason of a failure), then the summary as the
    last stdout line; the exit code."""
    summary.update(_spend(instance, summary.get("run_id")))
    if not summary["success"]:
        summary["failure"] = _failure_reason(instance, summary["run_id"])
    output.summarize(instance, summary)
    print(json.dumps(summary))
    return EXIT_OK if summary["success"] else EXIT_RUN_FAILED


def _artifact_paths(partition: str) -> dict[str, str]:
    from cineforge_assets.broll.jobs import jobs_file_path
    from cineforge_assets.paths import artifacts_dir
    from resources.io_manager import artifact_path

    root = artifacts_dir()
    out: dict[str, str] = {}
    for asset in INGEST_ASSET_NAMES:
        for ext in ("json", "parquet"):
            path = artifact_path(root, asset, partition, ext)
            if path.exists():
                out[asset] = str(path)
                break
    broll_jobs = jobs_file_path(root, BROLL_ASSET_NAME, partition)
    if broll_jobs.exists():
        out[BROLL_ASSET_NAME] = str(broll_jobs)
    return out


def cmd_ingest(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        output = RunOutput(stack, ensure_dagster_home(), "ingest", verbose=args.verbose)
        return _ingest(args, output)


def _ingest(args: argparse.Namespace, output: RunOutput) -> int:
    from dagster import DagsterInstance

    from cineforge_assets.crashed_runs import run_worker_tags
    from cineforge_assets.definitions import defs
    from cineforge_assets.executors import executor_name
    from cineforge_assets.partitions import ensure_screenplay_partition
    from cineforge_assets.screenplay.formats.errors import SourceError
    from cineforge_assets.screenplay.formats.limits import SourceLimits
    from cineforge_assets.sources import SourceRegistryError, register_source_version

    path = Path(args.file)
    limits = SourceLimits.from_env()
    try:
        screen_file(path, limits, follow_symlinks=args.follow_symlinks)
        registered = register_source_version(
            path, limits=limits, follow_symlinks=args.follow_symlinks, replace=args.replace
        )
    except SourceError as exc:
        return _refuse(path, str(exc), getattr(exc, "limit", None))
    except SourceRegistryError as exc:
        return _refuse(path, str(exc), None)
    except OSError as exc:
        return _refuse(path, f"cannot read {path}: {exc}", None)
    partition = registered.partition_key
    instance = DagsterInstance.get()
    ensure_screenplay_partition(instance, partition)
    job = defs.resolve_job_def("screenplay_pipeline")
    tags = {
        SOURCE_TAG: path.name,
        PROVIDER_TAG: args.provider,
        **output.tags,
        **registered.run_tags(),
        **run_worker_tags(),
    }
    selection = _stale_selection(instance, job, partition, output, force=args.force)
    if selection == []:
        return _finish_up_to_date(partition, output)
    with _maybe_simulator(args.provider, args.faults, args.seed) as sim_url:
        run_config = _ai_run_config(args.provider, sim_url)
        if executor_name() in ("in_process", "inprocess"):
            with output.executing(instance):
                result = job.execute_in_process(
                    instance=instance,
                    partition_key=partition,
                    run_config=run_config,
                    raise_on_error=False,
                    tags=tags,
                    asset_selection=selection,
                )
            run_id, success = result.run_id, result.success
        else:
            # Celery / k8s / multiprocess: steps run out of this process, so the job must be reconstructable.
            from dagster import execute_job, reconstructable

            from cineforge_assets.definitions import screenplay_pipeline_job_def

            with output.executing(instance), execute_job(
                reconstructable(screenplay_pipeline_job_def),
                instance=instance,
                run_config=run_config,
                tags={**tags, PARTITION_TAG: partition},
                raise_on_error=False,
                asset_selection=selection,
            ) as executed:
                run_id, success = executed.run_id, executed.success
    summary: dict[str, Any] = {
        "partition": partition,
        "run_id": run_id,
        "success": success,
        "artifacts": _artifact_paths(partition),
        "up_to_date": False,
        "materialized": [key.to_user_string() for key in selection] if selection else list(PIPELINE_ASSET_NAMES),
    }
    _add_served_by(instance, summary, _run_mode(run_config))
    if success:
        config_path = summary["artifacts"].get("project_config")
        if config_path:
            cfg = json.loads(Path(config_path).read_text())
            print(
                f"{cfg.get('title') or partition}: {cfg.get('scene_count')} scenes, "
                f"~{cfg.get('estimated_runtime_minutes')} min, {len(cfg.get('characters', []))} speaking characters"
            )
        broll_path = summary["artifacts"].get("veo3_broll")
        if broll_path:
            jobs = json.loads(Path(broll_path).read_text()).get("jobs", [])
            done = [j for j in jobs if j.get("status") == "succeeded"]
            print(f"B-roll: {len(done)} of {len(jobs)} clips in {Path(broll_path).parent}")
    return _finish(instance, summary, "run", output)


def _stale_selection(
    instance: Any, job: Any, partition: str, output: RunOutput, *, force: bool
) -> list[Any] | None:
    """The assets this ingest must materialize: ``None`` for all of them (``--force``, or all stale),
    ``[]`` when everything is up to date for this file and this code (no run, no provider call)."""
    from dagster import AssetKey

    from cineforge_assets.freshness import ingest_plan

    if force:
        return None
    plan = ingest_plan(instance, job, partition, PIPELINE_ASSET_NAMES)
    if len(plan.to_run) == len(PIPELINE_ASSET_NAMES):
        return None
    if plan.to_run:
        fresh = [name for name in PIPELINE_ASSET_NAMES if name not in plan.to_run]
        rerun = ", ".join(f"{name} ({plan.reasons[name]})" for name in plan.to_run)
        output.say(f"up to date, kept: {', '.join(fresh)}; materializing: {rerun}")
    return [AssetKey(name) for name in plan.to_run]


def _finish_up_to_date(partition: str, output: RunOutput) -> int:
    """An unchanged file with unchanged code: say so, and hand back the artifacts already there."""
    output.say(
        f"{partition} is up to date (same file, same code and prompts): nothing materialized, "
        "no provider called; --force re-runs it"
    )
    summary: dict[str, Any] = {
        "partition": partition,
        "run_id": None,
        "success": True,
        "up_to_date": True,
        "materialized": [],
        "cost_usd": 0.0,  # nothing was called
        "artifacts": _artifact_paths(partition),
    }
    print(json.dumps(summary))
    return EXIT_OK


def screen_file(path: Path, limits: Any, *, follow_symlinks: bool) -> None:
    """Refuse ``path`` before anything is copied or run when reading it could harm the host, for the
    reasons the inbox refuses it, in the same words: not a regular file (a link unless
    ``follow_symlinks``), over the size limit, over a container limit (a bomb). The reader checks the same
    again in ``raw_input``. A file that is merely not a screenplay (empty, binary, a ``.pdf`` without a PDF
    header) is left to ``raw_input``, whose failed run names the problem, as it always has."""
    from cineforge_assets.screenplay.formats.detect import detect_format
    from cineforge_assets.screenplay.formats.errors import SourceError
    from cineforge_assets.screenplay.formats.limits import check_container
    from cineforge_assets.screenplay.formats.reader import read_bounded

    data = read_bounded(path, limits, follow_symlinks=follow_symlinks)
    try:
        fmt, _confidence = detect_format(path, data)
    except SourceError:
        return
    check_container(path, data, fmt, limits)


def _refuse(path: Path, message: str, limit: str | None) -> int:
    """A file refused before any run: the reason on stderr, the JSON summary last, exit status 3."""
    print(f"cineforge: refused {path}: {message}", file=sys.stderr)
    failure: dict[str, Any] = {"error_class": "permanent", "message": message}
    if limit:
        failure["limit"] = limit
    print(json.dumps({"partition": None, "run_id": None, "success": False, "artifacts": {}, "failure": failure}))
    return EXIT_REFUSED_INPUT


def _remediation_target(instance: Any, run_id: str) -> str | None:
    """The upstream asset a failed run says to re-materialize (``remediate`` in failure/check metadata)."""
    from dagster import DagsterEventType

    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.ASSET_CHECK_EVALUATION):
        for record in instance.get_records_for_run(run_id, of_type=kind).records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            if kind == DagsterEventType.STEP_FAILURE:
                data = event.step_failure_data
                meta = data.user_failure_data.metadata if data and data.user_failure_data else {}
            else:
                evaluation = event.event_specific_data
                meta = evaluation.metadata if evaluation is not None and not evaluation.passed else {}
            target = meta.get("remediate") if meta else None
            value = getattr(target, "value", target)
            if value:
                return str(value)
    return None


def _fail_if_crashed(instance: Any, run: Any) -> Any | None:
    """A STARTING/STARTED run whose process is gone is marked failed (then resumed like any failed run);
    one still running, or whose process cannot be checked from here, is left alone (None)."""
    from cineforge_assets.crashed_runs import fail_run_if_worker_gone

    liveness, reason = fail_run_if_worker_gone(instance, run)
    if liveness == "gone":
        print(f"cineforge: run {run.run_id} was {run.status.value} but {reason}: marked it failed", file=sys.stderr)
        return instance.get_run_by_id(run.run_id)
    verdict = "still running" if liveness == "alive" else "not checkable from here"
    print(
        f"cineforge: run {run.run_id} is {run.status.value}, {verdict} ({reason}): nothing to resume",
        file=sys.stderr,
    )
    return None


def _resumed_run_tags(parent_tags: Any) -> dict[str, str]:
    """Re-execution does not inherit tags: the resumed run reads the same source version as its parent
    and names this process as its worker (so a crash of the resume is itself resumable)."""
    from cineforge_assets.crashed_runs import run_worker_tags
    kept = {k: parent_tags[k] for k in (SOURCE_PATH_TAG, SOURCE_SHA256_TAG) if k in parent_tags}
    return {**kept, **run_worker_tags()}


def cmd_resume(args: argparse.Namespace) -> int:
    """Resume a failed run from the failed stage, reusing every upstream materialization.

    Plain case: Dagster re-execution from failure (the UI's "Re-execute from failure"). When the failure
    says an upstream artifact is unusable, step back to that asset and re-run it and what follows.
    """
    with contextlib.ExitStack() as stack:
        output = RunOutput(stack, ensure_dagster_home(), "resume", verbose=args.verbose)
        return _resume(args, output)


def _resume(args: argparse.Namespace, output: RunOutput) -> int:
    from dagster import (
        AssetKey,
        DagsterInstance,
        DagsterRunStatus,
        ReexecutionOptions,
        execute_job,
        reconstructable,
    )

    from cineforge_assets.definitions import defs, screenplay_pipeline_job_def

    instance = DagsterInstance.get()
    run = instance.get_run_by_id(args.run_id)
    if run is None:
        print(f"cineforge: no run {args.run_id} in {os.environ['DAGSTER_HOME']}", file=sys.stderr)
        return EXIT_USAGE
    if run.status in (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED):
        run = _fail_if_crashed(instance, run)
        if run is None:
            return EXIT_USAGE
    if run.status != DagsterRunStatus.FAILURE:
        print(
            f"cineforge: run {args.run_id} is {run.status.value}, not failed: nothing to resume",
            file=sys.stderr,
        )
        return EXIT_USAGE
    partition = run.tags.get(PARTITION_TAG)
    # A step whose process was killed never gave its concurrency-pool slot back; the run is over.
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    tags = {RESUMED_FROM_TAG: run.run_id, **output.tags, **_resumed_run_tags(run.tags)}
    if partition:
        # Re-execution does not inherit the parent's partition tag when tags are given.
        tags[PARTITION_TAG] = partition
    remediate = _remediation_target(instance, run.run_id)
    with _maybe_simulator(args.provider, args.faults, args.seed) as sim_url, contextlib.ExitStack() as stack:
        run_config = (
            _ai_run_config(args.provider, sim_url) if args.provider != "keep" else dict(run.run_config)
        )
        try:
            run_config = _reachable_run_config(run_config, stack, args.faults, args.seed)
        except ProvidersUnreachable as refused:
            print(f"cineforge: not resuming {run.run_id}: {refused}", file=sys.stderr)
            refusal = {"partition": partition, "run_id": None, "resumed_from": run.run_id, "success": False}
            print(json.dumps({**refusal, "refused": str(refused)}))
            return EXIT_USAGE
        if remediate and remediate in PIPELINE_ASSET_NAMES:
            selection = list(PIPELINE_ASSET_NAMES[PIPELINE_ASSET_NAMES.index(remediate) :])
            print(
                f"cineforge: {remediate} is unusable; re-materializing {', '.join(selection)}",
                file=sys.stderr,
            )
            with output.executing(instance):
                result = defs.resolve_job_def("screenplay_pipeline").execute_in_process(
                    instance=instance,
                    partition_key=partition,
                    asset_selection=[AssetKey(name) for name in selection],
                    run_config=run_config,
                    raise_on_error=False,
                    tags={
                        k: v
                        for k, v in {**tags, STEPPED_BACK_TO_TAG: remediate}.items()
                        if k != PARTITION_TAG
                    },
                )
            run_id, success = result.run_id, result.success
        else:
            options = ReexecutionOptions.from_failure(run.run_id, instance)
            with output.executing(instance), execute_job(
                reconstructable(screenplay_pipeline_job_def),
                instance=instance,
                run_config=run_config,
                reexecution_options=options,
                tags=tags,
                raise_on_error=False,
            ) as reexecuted:
                run_id, success = reexecuted.run_id, reexecuted.success
    summary: dict[str, Any] = {
        "partition": partition,
        "run_id": run_id,
        "resumed_from": run.run_id,
        "success": success,
        "artifacts": _artifact_paths(partition) if partition else {},
    }
    _add_served_by(instance, summary, _run_mode(run_config))
    return _finish(instance, summary, "resumed run", output)


class ProvidersUnreachable(Exception):
    """The run's providers cannot be reached: resuming would silently hand its stages to others."""


def _reachability_problem(url: str, timeout: float = 3.0) -> str | None:
    """None if something answers HTTP at ``url`` (any status: the host is there), else why not."""
    import httpx

    try:
        httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _ai_config_of(run_config: dict[str, Any]) -> dict[str, Any]:
    return dict(((run_config.get("resources") or {}).get("ai") or {}).get("config") or {})


def _run_mode(run_config: dict[str, Any]) -> str:
    """The provider mode a run config gives the ``ai`` resource (the environment's when it sets none)."""
    from cineforge_assets.resource_config import provider_mode_from_env

    return str(_ai_config_of(run_config).get("mode") or provider_mode_from_env())


def _live_provider_urls(ai_config: dict[str, Any]) -> dict[str, str]:
    """provider -> base URL, for the live providers the config (or the environment) gives a key."""
    from cineforge_assets.resource_config import KEY_VARS, URL_VARS
    from resources.ai import AIProviderResource

    defaults = AIProviderResource.model_fields
    urls: dict[str, str] = {}
    for key_field, key_var in KEY_VARS.items():
        if not (ai_config.get(key_field) or os.environ.get(key_var)):
            continue
        provider = key_field.removesuffix("_api_key")
        url_field = f"{provider}_base_url"
        urls[provider] = str(
            ai_config.get(url_field) or os.environ.get(URL_VARS[url_field]) or defaults[url_field].default
        )
    return urls


def _reachable_run_config(
    run_config: dict[str, Any], stack: contextlib.ExitStack, faults: str, seed: int
) -> dict[str, Any]:
    """``run_config`` if the providers it names answer; for a simulated run whose simulator is gone, the
    same config on a simulator started here (``faults``); else ``ProvidersUnreachable``.

    Without this check a resumed run meets connection errors, its breakers open and the offline engine
    serves: the run "succeeds" on different providers than the run it resumes.
    """
    ai_config = _ai_config_of(run_config)
    mode = _run_mode(run_config)
    if mode == "simulated":
        url = str(ai_config.get("simulator_url") or os.environ.get("CINEFORGE_SIMULATOR_URL") or "")
        if url and _reachability_problem(f"{url.rstrip('/')}/_sim/health") is None:
            return run_config
        from cineforge_assets.resource_config import ai_run_config
        from resources.simulator import ProviderSimulator

        sim = stack.enter_context(ProviderSimulator(profile=faults, seed=seed))
        print(
            f"cineforge: the run's simulator ({url or 'none'}) is not answering; "
            f"started one at {sim.base_url} (faults: {faults})",
            file=sys.stderr,
        )
        if ai_config:
            ai_config["simulator_url"] = sim.base_url
            new_ai: dict[str, Any] = {"config": ai_config}
        else:  # the run took its config from the environment: restate it around the new simulator
            new_ai = ai_run_config("simulated", sim.base_url)["resources"]["ai"]
        resources = {**(run_config.get("resources") or {}), "ai": new_ai}
        veo3 = (resources.get("veo3") or {}).get("config") or {}
        if veo3.get("mode") == "simulated":  # B-roll follows its stages onto the new simulator
            resources["veo3"] = {"config": {**veo3, "simulator_url": sim.base_url}}
        return {**run_config, "resources": resources}
    if mode == "live":
        problems = {
            provider: f"{url} ({why})"
            for provider, url in _live_provider_urls(ai_config).items()
            if (why := _reachability_problem(url)) is not None
        }
        if problems:
            listed = "; ".join(f"{provider} at {where}" for provider, where in problems.items())
            raise ProvidersUnreachable(
                f"the run's providers are unreachable: {listed}. Resuming now would hand their stages to "
                "other providers or the offline engine; fix the network or endpoint, or resume with "
                "--provider offline to accept offline answers"
            )
    return run_config


def _add_served_by(instance: Any, summary: dict[str, Any], mode: str) -> None:
    """Say in ``summary`` which provider/model served each AI stage of the run, and flag the stages the
    offline engine served although the run's mode was not offline (a degraded answer, not the one asked for)."""
    from dagster import DagsterEventType

    served: dict[str, str] = {}
    records = instance.get_records_for_run(summary["run_id"], of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        event = record.event_log_entry.dagster_event
        materialization = event.event_specific_data.materialization if event else None
        if materialization is None:
            continue
        meta = materialization.metadata
        if "provider" in meta and "model" in meta:
            provider, model = (getattr(meta[k], "value", meta[k]) for k in ("provider", "model"))
            served[materialization.asset_key.to_user_string()] = f"{provider}/{model}"
    summary["mode"] = mode
    summary["served_by"] = served
    if mode != "offline":
        fallen = sorted(asset for asset, who in served.items() if who.startswith("offline/"))
        summary["offline_fallback"] = fallen
        if fallen:
            print(
                f"cineforge: warning: the offline engine served {', '.join(fallen)} although the run's mode is "
                f"{mode!r}: its providers failed or were skipped (see each asset's attempts)",
                file=sys.stderr,
            )


def cmd_estimate(args: argparse.Namespace) -> int:
    """Print what ingesting FILE would cost per stage and model; no provider is called, nothing is stored."""
    from cineforge_assets.estimate import estimate_file, estimate_lines
    from cineforge_assets.screenplay.formats.errors import SourceError

    path = Path(args.file)
    try:
        estimate = estimate_file(path, broll_clips=args.broll_clips)
    except (OSError, SourceError) as exc:
        print(f"cineforge: cannot estimate {path}: {exc}", file=sys.stderr)
        print(json.dumps({"file": str(path), "estimated_cost_usd": None, "error": str(exc)}))
        return EXIT_REFUSED_INPUT
    print("\n".join(estimate_lines(estimate)))
    print(json.dumps(estimate.as_json()))
    return EXIT_OK


def cmd_simulator(args: argparse.Namespace) -> int:
    from resources.simulator.__main__ import main as simulator_main

    argv = ["--host", args.host, "--port", str(args.port), "--faults", args.faults]
    return simulator_main([*argv, "--seed", str(args.seed), "--latency", str(args.latency)])


def cmd_status(args: argparse.Namespace) -> int:
    """Breakers, last runs, inbox and spend; ``--json`` for scripts."""
    ensure_dagster_home()
    from dagster import DagsterInstance

    from cineforge_assets.paths import telemetry_path
    from cineforge_assets.status import collect_status, render
    from resources.resilience.breaker_store import default_store_url

    store_url = args.breaker_store or os.environ.get("CINEFORGE_BREAKER_STORE_URL") or default_store_url()
    telemetry = Path(os.environ.get("CINEFORGE_TELEMETRY_PATH") or telemetry_path())
    now = time.time()
    with DagsterInstance.get() as instance:
        report = collect_status(
            instance,
            store_url=store_url,
            telemetry=telemetry,
            runs=args.runs,
            now=now,
            mode=args.mode,
            all_breakers=args.all_breakers,
        )
    if args.json:
        print(report.to_json())
    else:
        print("\n".join(render(report, now)))
    return EXIT_OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cineforge-pipeline")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cineforge",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="register FILE as a partition and materialize the pipeline for it")
    ingest.add_argument("file")
    ingest.add_argument(
        "--provider",
        default="auto",
        choices=["auto", "offline", "simulated", "live"],
        help="auto: live when API keys are set, else offline",
    )
    ingest.add_argument(
        "--faults", default="none", help="simulator fault profile (with --provider simulated)"
    )
    ingest.add_argument("--seed", type=int, default=0)
    ingest.add_argument(
        "--force", action="store_true", help="materialize everything even if the file and code are unchanged"
    )
    ingest.add_argument(
        "--replace",
        action="store_true",
        help="replace the partition's source even when it was registered from a differently named file",
    )
    ingest.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="read FILE even when it is a symbolic link (by default only regular files are read)",
    )
    ingest.add_argument("--verbose", action="store_true", help="Dagster's event log on the terminal, not in a file")
    ingest.set_defaults(func=cmd_ingest)

    resume = sub.add_parser(
        "resume", help="resume a failed run from the failed stage (reuses upstream results)"
    )
    resume.add_argument("run_id")
    resume.add_argument(
        "--provider",
        default="keep",
        choices=["keep", "auto", "offline", "simulated", "live"],
        help="keep: the failed run's own resource config",
    )
    resume.add_argument("--faults", default="none")
    resume.add_argument("--seed", type=int, default=0)
    resume.add_argument("--verbose", action="store_true", help="Dagster's event log on the terminal, not in a file")
    resume.set_defaults(func=cmd_resume)

    estimate = sub.add_parser(
        "estimate", help="what ingesting FILE would cost, per stage and model of its chain (calls no provider)"
    )
    estimate.add_argument("file")
    estimate.add_argument("--broll-clips", type=int, default=3, help="B-roll clips to price (the asset's default: 3)")
    estimate.set_defaults(func=cmd_estimate)

    status = sub.add_parser("status", help="breakers, last runs, inbox files waiting or refused, spend today")
    status.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    status.add_argument("--runs", type=int, default=10, help="how many recent runs to list")
    status.add_argument("--breaker-store", default="", help="breaker store URL (default: as the runs use)")
    status.add_argument(
        "--mode",
        choices=("live", "simulated", "offline"),
        default=None,
        help="list this mode's breakers in use (default: the mode runs use here; offline shows the live ones)",
    )
    status.add_argument(
        "--all-breakers",
        action="store_true",
        help="list every stored breaker, other modes' and stale ones too (default: one summary line for them)",
    )
    status.set_defaults(func=cmd_status)

    sim = sub.add_parser("simulator", help="serve the provider simulator standalone; prints its base URL")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0)
    sim.add_argument("--faults", default="none")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--latency", type=float, default=0.0)
    sim.set_defaults(func=cmd_simulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
