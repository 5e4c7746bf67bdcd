"""``run_moderation``: INPUT's lines through a pool of workers into OUTPUT, with resume, a run budget and
progress; see ``ecoalign.bulk`` for the guarantees."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ecoalign.bulk import chunks
from ecoalign.bulk.chunks import ChunkFn, Outcome, moderate_chunk
from ecoalign.bulk.errors import RunError
from ecoalign.bulk.idset import IdSet
from ecoalign.bulk.output import encode, error_line
from ecoalign.bulk.reading import count_lines, iter_raw_lines
from ecoalign.bulk.resume import ResumeState, read_resume_state
from ecoalign.bulk.writer import Writer
from ecoalign.evaluators.base import Scanner
from ecoalign.moderation.budget import RunBudget
from ecoalign.moderation.inputs import ParseOptions
from ecoalign.moderation.lines import LineError, LineHeader, parse_header
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.traces import TraceWriter


@dataclass
class RunSummary:
    run_id: str
    input_lines: int = 0
    skipped: int = 0  # already in OUTPUT (resume)
    items: int = 0  # output lines written by this run
    errors: int = 0
    results: int = 0
    flagged: int = 0
    tokens: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # moderation only, from the first line read to the last line written
    load_seconds: float = 0.0  # loading the models before that (warm-up)
    cpu_seconds: float = 0.0  # CPU time spent during ``seconds`` (threads, and children once they exit)
    budget: dict[str, Any] = field(default_factory=dict)
    resumed_from: dict[str, Any] | None = None
    traces: int = 0
    workers: int = 0
    executor: str = "thread"
    interrupted: bool = False

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["items_per_s"] = round(self.items_per_s, 3)
        data["seconds"] = round(self.seconds, 3)
        data["load_seconds"] = round(self.load_seconds, 3)
        data["cpu_seconds"] = round(self.cpu_seconds, 3)
        return data


def run_moderation(
    input_path: str | Path,
    output_path: str | Path,
    *,
    resume: bool = False,
    workers: int = 2,
    budget: int | None = None,
    moderator: Moderator | None = None,
    db_url: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    options: ParseOptions | None = None,
    chunk_size: int = 16,
    executor: str = "thread",
    scanner_factory: Callable[[], Scanner] | None = None,
    chunk_fn: ChunkFn | None = None,
    store_traces: bool = True,
    warm_up: bool = True,
) -> RunSummary:
    """Moderate every line of INPUT into OUTPUT (see ``ecoalign.bulk``); returns the run's counters.

    ``budget`` is the run's token budget for escalations; on ``resume`` the tokens already recorded in OUTPUT
    count against it. ``executor="process"`` scans in ``workers`` child processes built by ``scanner_factory``
    (decisions, judge calls and the budget stay in this process). ``chunk_fn`` replaces the in-process
    moderation of a chunk (the ``--api`` client uses it). Traces go to ``db_url`` (default: settings).
    ``warm_up`` loads the models before the clock starts, so ``seconds`` and ``items/s`` are moderation only
    (``load_seconds`` says what loading took).
    """
    src, dst = Path(input_path), Path(output_path)
    check_paths(src, dst, resume=resume, overwrite=overwrite)
    if workers < 1:
        raise RunError("--workers must be >= 1")
    summary = RunSummary(run_id=uuid.uuid4().hex, workers=workers, executor=executor)
    state = _start_output(dst, summary, resume=resume)
    options = options or ParseOptions.from_settings(src.resolve().parent)
    if chunk_fn is None:
        if moderator is None:
            raise RunError("a moderator is needed unless chunk_fn is given")
        moderator.run_budget = RunBudget(budget, spent=state.tokens)
    traces = _trace_writer(db_url) if store_traces and chunk_fn is None else None
    run = _Run(summary, options, moderator, chunk_fn, executor, workers)
    bar = _progress_bar(count_lines(src) if progress else None, progress)
    writer = Writer(dst, traces)
    pool = _pool(executor, workers, scanner_factory, options)
    try:
        run.load(pool, warm_up)
        run.stream(src, state, pool, writer, bar, chunk_size)
    except KeyboardInterrupt:
        summary.interrupted = True
        run.cancel()
        raise
    finally:
        pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
        writer.close()
        bar.close()
        run.finish(traces)
    return summary


def _start_output(dst: Path, summary: RunSummary, *, resume: bool) -> ResumeState:
    """What OUTPUT already holds when resuming (noted in the summary); otherwise OUTPUT is emptied."""
    if not resume:
        if dst.exists():
            dst.write_bytes(b"")
        return ResumeState()
    state = read_resume_state(dst)
    summary.resumed_from = {
        "lines": state.lines,
        "tokens": state.tokens,
        "dropped_bytes": state.dropped_bytes,
        "corrupt_lines": state.corrupt_lines,
    }
    return state


def _trace_writer(db_url: str | None) -> TraceWriter:
    from ecoalign.settings import get_settings

    return TraceWriter(db_url or get_settings().db_url)


def _pool(
    executor: str, workers: int, scanner_factory: Callable[[], Scanner] | None, options: ParseOptions
) -> Executor:
    if executor == "process":
        if scanner_factory is None:
            raise RunError("executor='process' needs a scanner_factory")
        import multiprocessing

        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=chunks.child_init,
            initargs=(scanner_factory, options),
        )
    if executor == "thread":
        return ThreadPoolExecutor(workers, thread_name_prefix="moderate")
    raise RunError(f"unknown executor {executor!r}: thread or process")


class _Run:
    """One run's moving parts: chunks in flight (at most two per worker), their outcomes counted and written in
    the order they finish."""

    def __init__(
        self,
        summary: RunSummary,
        options: ParseOptions,
        moderator: Moderator | None,
        chunk_fn: ChunkFn | None,
        executor: str,
        workers: int,
    ) -> None:
        self.summary = summary
        self.options = options
        self.moderator = moderator
        self.chunk_fn = chunk_fn
        self.executor = executor
        self.workers = workers
        self.in_flight: dict[Future[Any], int] = {}
        self.started = time.monotonic()
        self.cpu_started = _cpu_seconds()

    def load(self, pool: Executor, warm_up: bool) -> None:
        """Warm the models up before the clock starts (in every child, or in this process's moderator)."""
        load_started = time.monotonic()
        if warm_up and self.executor == "process":
            for ready in [pool.submit(chunks.child_ready) for _ in range(self.workers)]:
                ready.result()
        elif warm_up and self.moderator is not None and self.chunk_fn is None:
            self.moderator.warm_up()
        self.summary.load_seconds = time.monotonic() - load_started
        self.started = time.monotonic()
        self.cpu_started = _cpu_seconds()

    def stream(
        self, src: Path, state: ResumeState, pool: Executor, writer: Writer, bar: Any, chunk_size: int
    ) -> None:
        """Read INPUT in order, hand chunks of usable lines to the pool, write the others' error lines at once."""
        with src.open("rb") as stream:
            chunk: list[LineHeader] = []
            for header in _headers(stream, self.options, state, self.summary):
                if header is None or isinstance(header, LineError):
                    self._write_unread(header, writer, bar)
                    continue
                chunk.append(header)
                if len(chunk) >= chunk_size:
                    self._submit(pool, chunk)
                    chunk = []
                    while len(self.in_flight) >= self.workers * 2:
                        self._collect(writer, bar, block=True)
                    self._collect(writer, bar, block=False)
            if chunk:
                self._submit(pool, chunk)
            while self.in_flight:
                self._collect(writer, bar, block=True)

    def _write_unread(self, header: LineError | None, writer: Writer, bar: Any) -> None:
        """A skipped or blank line (``None``) only moves the bar; an unusable one gets its error line."""
        if header is not None:
            writer.add([encode(error_line(header))], [])
            self.summary.items += 1
            self.summary.errors += 1
        bar.update(1)

    def _submit(self, pool: Executor, chunk: list[LineHeader]) -> None:
        if self.executor == "process":
            future: Future[Any] = pool.submit(chunks.child_scan, chunk)
        elif self.chunk_fn is not None:
            future = pool.submit(self.chunk_fn, chunk)
        else:
            assert self.moderator is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
            future = pool.submit(moderate_chunk, chunk, self.moderator, self.options, self.summary.run_id)
        self.in_flight[future] = len(chunk)

    def _collect(self, writer: Writer, bar: Any, *, block: bool) -> None:
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        summary = self.summary
        for future in done:
            n = self.in_flight.pop(future)
            value = future.result()
            if self.executor == "process":
                assert self.moderator is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
                value = chunks.decide_scanned(value[0], value[1], self.moderator, summary.run_id, n)
            _account(summary, value)
            writer.add(value.lines, value.rows)
            bar.update(n)
            bar.set_postfix(tokens=summary.tokens, flagged=summary.flagged, errors=summary.errors, refresh=False)

    def cancel(self) -> None:
        for future in self.in_flight:
            future.cancel()

    def finish(self, traces: TraceWriter | None) -> None:
        """The summary's timings, budget and trace count (also after an interrupt)."""
        summary = self.summary
        summary.seconds = time.monotonic() - self.started
        summary.cpu_seconds = _cpu_seconds() - self.cpu_started
        if self.moderator is not None and self.chunk_fn is None:
            snap = self.moderator.run_budget.snapshot()
            summary.budget = {"total": snap.total, "spent": snap.spent, "overrun": snap.overrun}
        if traces is not None:
            summary.traces = traces.rows
            traces.close()


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children: a throughput measure that another
    process's load on the machine does not distort the way wall time is."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _headers(
    stream: BinaryIO, options: ParseOptions, state: ResumeState, summary: RunSummary
) -> Iterator[LineHeader | LineError | None]:
    """Headers to process, in input order: resume skips (yielded as ``None``) and duplicates resolved here,
    because only the reader sees lines in order."""
    first_line = IdSet()  # every custom_id seen, with its line: 12 bytes each
    for line_no, raw in iter_raw_lines(stream, options.max_line_bytes):
        summary.input_lines += 1
        if line_no in state.done_lines:
            summary.skipped += 1
            yield None
            continue
        header = parse_header(raw, line_no, options)
        if header is None:
            yield None
            continue
        if isinstance(header, LineError):
            yield header
            continue
        seen = first_line.setdefault(header.custom_id, line_no)
        if seen is not None:
            yield LineError(
                line_no,
                header.custom_id,
                "duplicate_custom_id",
                f"line {line_no}: custom_id {header.custom_id!r} was already used on line {seen}",
            )
            continue
        if header.custom_id in state.done_ids:
            summary.skipped += 1
            yield None
            continue
        yield header


def _account(summary: RunSummary, out: Outcome) -> None:
    summary.items += out.items
    summary.errors += out.errors
    summary.results += out.results
    summary.flagged += out.flagged
    summary.tokens += out.tokens
    for key, value in out.decisions.items():
        summary.decisions[key] = summary.decisions.get(key, 0) + value


def check_paths(src: Path, dst: Path, *, resume: bool, overwrite: bool) -> None:
    if not src.exists():
        raise RunError(f"input file not found: {src}")
    if not src.is_file():
        raise RunError(f"input is not a file: {src}")
    if not os.access(src, os.R_OK):
        raise RunError(f"input file is not readable: {src}")
    if dst.resolve() == src.resolve():
        raise RunError("the output file must not be the input file")
    parent = dst.resolve().parent
    if not parent.is_dir():
        raise RunError(f"output folder does not exist: {parent}")
    if dst.exists():
        if dst.is_dir():
            raise RunError(f"output is a folder: {dst}")
        if not os.access(dst, os.W_OK):
            raise RunError(f"output file is not writable: {dst}")
        if dst.stat().st_size and not (resume or overwrite):
            raise RunError(f"output file {dst} already has lines: pass --resume to continue it or --overwrite")
    elif not os.access(parent, os.W_OK):
        raise RunError(f"output folder is not writable: {parent}")


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int | None, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="item", dynamic_ncols=True, file=sys.stderr, smoothing=0.1, mininterval=0.5)
