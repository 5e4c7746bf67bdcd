"""Human review verdicts as a moderation classifier's training rows (``ecoalign export --format review-labels``).

One row per decided review task, with its latest verdict (a re-decided task's earlier verdicts are history, not
labels): the item (``text``, its images in the ``images`` column as the other formats write them), ``label``
(``True`` when the reviewer flagged or blocked it: unsafe), the raw ``verdict`` and the reviewer's ``categories``,
and next to them the machine's ``machine_flagged``, ``machine_categories`` and ``machine_category_scores`` so a
disagreement is visible in the row. This is (text, label) data for a classifier, not a TRL chat format.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ecoalign.export.formats import MAX_EXPORT_IMAGE_BYTES, Example, ExampleImage, Options, Tally
from ecoalign.media import MediaError, decode_data_url
from ecoalign.store.reviews import HumanLabel

UNSAFE_VERDICTS = frozenset({"flag", "block"})


def _images(label: HumanLabel) -> tuple[ExampleImage, ...] | None:
    """The item's images (data URLs as the review task keeps them), or None if one cannot be read back."""
    images: list[ExampleImage] = []
    for stored in label.item.get("images") or []:
        try:
            image = decode_data_url(str(stored.get("data_url", "")), MAX_EXPORT_IMAGE_BYTES)
        except MediaError:
            return None
        images.append(ExampleImage(image.data, image.media_type, image.sha256))
    return tuple(images)


def _machine(result: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The machine's flagged categories and its category scores (sorted by name: a stable row)."""
    flagged = sorted(name for name, on in (result.get("categories") or {}).items() if on)
    scores = [{"category": name, "score": float(score)}
              for name, score in sorted((result.get("category_scores") or {}).items())]
    return flagged, scores


def label_examples(label: HumanLabel, options: Options, tally: Tally) -> Iterator[Example]:
    """The row of one decided task (none if its images cannot be read, or are asked to be left out)."""
    tally.jobs_read += 1
    images = _images(label)
    if images is None:
        tally.skipped["unreadable_item"] += 1
        return
    if images and options.text_content:
        tally.skipped["has_images_text_content"] += 1
        return
    unsafe = label.verdict in UNSAFE_VERDICTS
    machine_categories, scores = _machine(label.machine_result)
    columns: dict[str, Any] = {
        "text": label.item.get("text") or "",
        "label": unsafe,
        "verdict": label.verdict,
        "categories": sorted(label.categories),
        "machine_flagged": label.machine_flagged,
        "machine_categories": machine_categories,
        "machine_category_scores": scores,
        "policy": {"id": label.policy_id, "version": label.policy_version},
    }
    ids = {"trace_id": label.trace_id, "task_id": label.task_id, "decided_at": label.decided_at.isoformat()}
    source = "agrees_with_machine" if unsafe == label.machine_flagged else "overturns_machine"
    tally.jobs_used += 1
    tally.reviewers[label.reviewer] += 1
    yield Example(columns, images, label.task_id, (), source, frozenset(), ids)
