"""``imagegen``: the image generation API from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from imagegen_client import errors
from imagegen_client.async_client import AsyncImageGenClient
from imagegen_client.client import DEFAULT_WAIT_TIMEOUT, ImageGenClient
from imagegen_client.models import JobEvent, JobStatus, ResultResponse, StatusResponse

# Exit codes (also in --help).
OK, FAILED, USAGE, CANCELLED, REFUSED, UNAVAILABLE, TIMED_OUT, NOT_FINISHED = 0, 1, 2, 3, 4, 5, 6, 7
INTERRUPTED = 130
_JOB_EXIT = {JobStatus.COMPLETED: OK, JobStatus.FAILED: FAILED, JobStatus.CANCELLED: CANCELLED}

EPILOG = """\
examples:
  imagegen generate "Un phare sous la pluie"
  imagegen generate "Un chat astronaute" -n 2 --size 1792x1024 --format WEBP \\
      --style artistic --quality ultra -o out/
  imagegen generate "Le même, en aquarelle" --input-image https://example.com/cat.jpg
  imagegen generate "Un phare" --json > result.json     # the result document, no download
  imagegen watch img_abc123 -o out/                     # follow a job created elsewhere
  imagegen status img_abc123
  imagegen jobs --status COMPLETED --limit 5

where the API is: --url or $IMAGEGEN_URL (default http://localhost:9006);
credentials: --api-key or $IMAGEGEN_API_KEY (an igk_... key), when the API requires one.

exit codes:
  0  the job COMPLETED (or the command succeeded)    4  the API refused the request (4xx)
  1  the job FAILED                                   5  the API is unreachable or failed (5xx)
  2  bad command line                                 6  the job did not end within --timeout
  3  the job was CANCELLED                            7  result: the job is still running
  130 interrupted (Ctrl-C): generate cancels the jobs it created
Errors from the API are printed on stderr in its own words (French).
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the API's base URL (default: $IMAGEGEN_URL, else http://localhost:9006)")
    common.add_argument("--api-key", help="API key sent as Bearer (default: $IMAGEGEN_API_KEY)")
    common.add_argument("--json", action="store_true", help="print JSON documents instead of text")

    parser = argparse.ArgumentParser(
        prog="imagegen",
        description="Generate images with the image generation API, and follow, list or cancel its jobs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("-o", "--output", type=Path, help="directory to save the images in (created if needed)")
    waiting.add_argument("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT,
                         help=f"give up waiting after this many seconds (default {DEFAULT_WAIT_TIMEOUT:g})")

    gen = commands.add_parser(
        "generate", parents=[common, waiting], help="create image jobs, show their progress, download the images",
        description="Create one job per prompt, show a live progress bar per job, then download the images "
        "(to the current directory unless -o is given; with --json, only when -o is given) and print their paths.",
        epilog="examples:\n"
        '  imagegen generate "Un phare sous la pluie"\n'
        '  imagegen generate "Un chat astronaute" -n 2 --size 1792x1024 --format WEBP --style artistic -o out/\n'
        '  imagegen generate "Un phare" "Un moulin" --json > results.jsonl   # one result document per line\n'
        "Ctrl-C cancels the jobs. Exit codes: imagegen --help.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("prompts", nargs="+", metavar="PROMPT", help="what to draw (quote it); several prompts run in parallel")
    gen.add_argument("-n", "--num-images", type=int, default=1, help="images per prompt, 1 to 4 (default 1)")
    gen.add_argument("--size", default="1024x1024", help="512x512, 1024x1024 (default) or 1792x1024")
    gen.add_argument("--format", default="PNG", help="PNG (default), JPEG or WEBP")
    gen.add_argument("--style", default="photorealistic", help="photorealistic (default), artistic, illustration or 3d-render")
    gen.add_argument("--quality", default="high", help="standard, high (default) or ultra")
    gen.add_argument("--input-image", metavar="URL", help="an http(s) image to start from")
    gen.add_argument("--seed", type=int, help="image n uses seed + n - 1: the same seed redraws the same images")
    gen.add_argument("--model", help="one of the models the API offers (default: its own)")
    gen.add_argument("--webhook-url", metavar="URL", help="also POST the job's webhooks to this URL")

    watch = commands.add_parser("watch", parents=[common, waiting], help="follow a job to its end (progress bar)")
    watch.add_argument("job_id")
    for name, text in (("status", "show a job's status and progress"), ("result", "print a job's result document"),
                       ("cancel", "cancel a job that has not ended")):
        commands.add_parser(name, parents=[common], help=text).add_argument("job_id")
    jobs = commands.add_parser("jobs", parents=[common], help="list your jobs, newest first")
    jobs.add_argument("--status", help="only jobs with this status (PENDING ... COMPLETED, FAILED, CANCELLED)")
    jobs.add_argument("--limit", type=int, default=20, help="how many jobs at most (default 20)")
    return parser


@dataclass
class _Job:
    """One job of ``generate``/``watch`` as the terminal shows it."""

    prompt: str
    task: TaskID
    job_id: str = ""
    created_here: bool = False  # generate's own job: cancelled on Ctrl-C
    result: ResultResponse | None = None
    error: errors.ImageGenError | None = None
    paths: list[Path] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out, err = Console(soft_wrap=True), Console(stderr=True)
    try:
        if args.command in ("generate", "watch"):
            return asyncio.run(_follow_jobs(args, out, err))
        with ImageGenClient(args.url, args.api_key) as client:
            return _COMMANDS[args.command](client, args, out)
    except errors.ImageGenError as exc:
        _print_error(err, exc)
        return _exit_code(exc)
    except KeyboardInterrupt:
        err.print("imagegen: interrompu" + (", tâche(s) annulée(s)" if args.command == "generate" else ""))
        return INTERRUPTED


async def _follow_jobs(args: argparse.Namespace, out: Console, err: Console) -> int:
    """generate (create, then follow) or watch (follow): a progress bar per job, then the outcome."""
    output = args.output or (Path(".") if args.command == "generate" and not args.json else None)
    columns = (
        TextColumn("{task.description}"), TextColumn("[bold]{task.fields[status]:<12}"), BarColumn(),
        TaskProgressColumn(), TimeElapsedColumn(), TextColumn("{task.fields[message]}"),
    )
    async with AsyncImageGenClient(args.url, args.api_key) as client:
        with Progress(*columns, console=err) as progress:
            def row(label: str) -> TaskID:
                return progress.add_task(label, total=100, status="", message="")

            if args.command == "watch":
                jobs = [_Job("", row(args.job_id), job_id=args.job_id)]
            else:
                jobs = [_Job(prompt, row("…"), created_here=True) for prompt in args.prompts]
            await asyncio.gather(*(_one_job(client, args, progress, job, output) for job in jobs))
    for job in jobs:
        _report(job, args, out, err)
    return next((code for code in map(_job_exit, jobs) if code != OK), OK)


async def _one_job(client: AsyncImageGenClient, args: argparse.Namespace, progress: Progress, job: _Job, output: Path | None) -> None:
    def show(update: JobEvent) -> None:
        progress.update(job.task, completed=update.progress, status=update.status.value, message=update.message)

    try:
        if job.created_here:
            created = await client.create(job.prompt, **_generate_params(args))
            job.job_id = created.job_id
            progress.update(job.task, description=job.job_id, status=created.status.value, message=created.message)
        try:
            job.result = await client.wait(job.job_id, on_progress=show, timeout=args.timeout)
        except asyncio.CancelledError:  # Ctrl-C: cancel what this command started
            if job.created_here:
                await _cancel_quietly(client, job.job_id)
            raise
        if output is not None:
            job.paths = await client.download(job.result, output)
    except errors.JobFailedError as exc:
        job.result, job.error = exc.job, exc
    except errors.ImageGenError as exc:
        job.error = exc


async def _cancel_quietly(client: AsyncImageGenClient, job_id: str) -> None:
    try:
        await client.cancel(job_id)
    except errors.ImageGenError:
        pass  # it may have ended meanwhile (409): nothing left to stop


def _generate_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"num_images": args.num_images, "size": args.size, "format": args.format,
                              "style": args.style, "quality": args.quality}
    optional = {"input_image_url": args.input_image, "seed": args.seed, "model": args.model,
                "webhook_url": args.webhook_url}
    params |= {name: value for name, value in optional.items() if value is not None}
    return params


def _report(job: _Job, args: argparse.Namespace, out: Console, err: Console) -> None:
    if job.result is not None and args.json:
        _print_document(job.result, indent=None)
    if job.error is not None:
        _print_error(err, job.error, job.job_id)
        return
    if args.json or job.result is None:
        return
    for path in job.paths:
        out.print(str(path), highlight=False)
    out.print(_summary(job.result), highlight=False)


def _summary(result: ResultResponse) -> str:
    images = result.images or []
    kinds = sorted({f"{image.dimensions} {image.format}" for image in images})
    size = sum(image.size_bytes for image in images)
    meta = result.metadata
    timing = f", {meta.generation_time_seconds:.1f} s, {meta.model_name}" if meta else ""
    return f"{result.job_id}: {len(images)} image(s) {', '.join(kinds)}, {size / 1024:.0f} KiB{timing}"


def _job_exit(job: _Job) -> int:
    if job.error is not None and not isinstance(job.error, errors.JobFailedError):
        return _exit_code(job.error)
    return _JOB_EXIT[job.result.status] if job.result is not None else UNAVAILABLE


def _exit_code(exc: errors.ImageGenError) -> int:
    if isinstance(exc, errors.JobTimeoutError):
        return TIMED_OUT
    if isinstance(exc, errors.JobFailedError):
        return _JOB_EXIT.get(exc.job.status, FAILED)
    if exc.status_code is not None and 400 <= exc.status_code < 500:
        return REFUSED
    return UNAVAILABLE


def _print_error(err: Console, exc: errors.ImageGenError, job_id: str = "") -> None:
    where = f"{job_id}: " if job_id else ""
    err.print(f"imagegen: {where}{exc.message}", highlight=False, markup=False)
    for detail in exc.details:
        if detail.get("message") and detail["message"] != exc.message:
            err.print(f"  {detail.get('field', '')}: {detail['message']}", highlight=False, markup=False)


def _print_document(document: BaseModel, indent: int | None = 2) -> None:
    """JSON on stdout: indented for a person at a terminal, one line for a pipe (and JSON Lines)."""
    text = json.dumps(document.model_dump(mode="json", exclude_none=True), ensure_ascii=False,
                      indent=indent if sys.stdout.isatty() else None)
    print(text, flush=True)


def _status_line(job: StatusResponse) -> str:
    return f"{job.job_id}  {job.status.value:<12} {job.progress:>3}%  {job.message}"


def _show_job(job: StatusResponse, args: argparse.Namespace, out: Console) -> int:
    if args.json:
        _print_document(job)
        return OK
    out.print(_status_line(job), highlight=False, markup=False)
    for error in job.errors or []:
        out.print(f"  {error}", highlight=False, markup=False)
    return OK


def _status(client: ImageGenClient, args: argparse.Namespace, out: Console) -> int:
    return _show_job(client.status(args.job_id), args, out)


def _cancel(client: ImageGenClient, args: argparse.Namespace, out: Console) -> int:
    return _show_job(client.cancel(args.job_id), args, out)


def _result(client: ImageGenClient, args: argparse.Namespace, out: Console) -> int:
    result = client.result(args.job_id)
    _print_document(result)
    return _JOB_EXIT.get(result.status, NOT_FINISHED)


def _jobs(client: ImageGenClient, args: argparse.Namespace, out: Console) -> int:
    page_size = max(1, min(args.limit, 100))
    listed = list(islice(client.jobs(status=args.status, page_size=page_size), max(args.limit, 0)))
    if args.json:
        for job in listed:
            _print_document(job, indent=None)
        return OK
    table = Table(box=None)
    for name in ("job", "status", "progress", "updated"):
        table.add_column(name, no_wrap=True)
    table.add_column("message", overflow="fold")
    for job in listed:
        table.add_row(job.job_id, job.status.value, f"{job.progress}%", job.updated_at, job.message)
    out.print(table)
    return OK


_COMMANDS = {"status": _status, "result": _result, "cancel": _cancel, "jobs": _jobs}


if __name__ == "__main__":
    sys.exit(main())
