"""One export: stream finished jobs (or decided review tasks) out of the store, turn them into examples, drop
duplicates, write, manifest."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.export.dedup import DigestSet
from ecoalign.export.formats import Example, ExportFormat, Options, Tally, examples_of
from ecoalign.export.labels import label_examples
from ecoalign.export.manifest import build_manifest, write_manifest
from ecoalign.export.writer import ExampleWriter, ImageMode
from ecoalign.store.exports import JobFilter, iter_finished_jobs
from ecoalign.store.reviews import LabelFilter, iter_human_labels


@dataclass(frozen=True)
class ExportResult:
    output: Path
    manifest_path: Path
    manifest: dict[str, Any]


def _example_batches(
    factory: sessionmaker[Session], options: Options, spec: JobFilter | LabelFilter, batch_size: int, tally: Tally
) -> Iterator[tuple[int, list[Example]]]:
    """(records read, their examples) a batch at a time: finished jobs, or for review-labels decided tasks."""
    if options.format is ExportFormat.REVIEW_LABELS:
        if not isinstance(spec, LabelFilter):
            raise TypeError("review-labels exports take a LabelFilter")
        for labels in iter_human_labels(factory, spec, batch_size=batch_size):
            yield len(labels), [e for label in labels for e in label_examples(label, options, tally)]
        return
    if not isinstance(spec, JobFilter):
        raise TypeError(f"{options.format.value} exports take a JobFilter")
    for jobs in iter_finished_jobs(factory, spec, batch_size=batch_size):
        yield len(jobs), [e for job in jobs for e in examples_of(job, options, tally)]


def export(
    factory: sessionmaker[Session],
    output: Path,
    options: Options,
    *,
    spec: JobFilter | LabelFilter | None = None,
    images: ImageMode = ImageMode.PATHS,
    with_ids: bool = False,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write ``output`` and its manifest. Memory: one batch of jobs and their rows, plus the digest table
    (16-32 bytes a row written). ``progress(n)`` is called with the records (jobs, or review tasks) read in each
    batch."""
    labels = options.format is ExportFormat.REVIEW_LABELS
    spec = spec or (LabelFilter() if labels else JobFilter())
    if options.text_content:
        images = ImageMode.NONE  # text-only rows (jobs with images are skipped)
    started = time.perf_counter()
    tally = Tally()
    seen = DigestSet()
    rows = duplicates = 0
    writer = ExampleWriter(output, options.format, images, text_content=options.text_content, with_ids=with_ids)
    try:
        for read, examples in _example_batches(factory, options, spec, batch_size, tally):
            fresh: list[Example] = []
            for example in examples:
                if not seen.add(example.digest()):
                    duplicates += 1
                    continue
                fresh.append(example)
                tally.rows_by_source[example.source] += 1
                tally.evaluators.update(example.evaluators)
            writer.write(fresh)
            rows += len(fresh)
            if progress is not None:
                progress(read)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    manifest = build_manifest(
        output=output,
        fmt=options.format.value,
        columns=list(writer.schema.names),
        images=images.value,
        text_content=options.text_content,
        spec=spec,
        tally=tally,
        rows=rows,
        duplicates=duplicates,
        image_files=writer.image_files,
        dedup_bytes=seen.nbytes,
        elapsed_s=time.perf_counter() - started,
    )
    return ExportResult(output, write_manifest(output, manifest), manifest)
