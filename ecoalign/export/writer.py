"""Writing examples as JSONL or Parquet, a batch at a time, into a temporary file renamed only when complete.

Images (``images`` column, in the order of the ``{"type": "image"}`` placeholders):

* ``paths`` (default): each image is written once, named by its sha256, into ``<stem>.images/`` next to the
  output; rows hold paths relative to the output's folder (``datasets``' ``Image`` feature reads them from there).
* ``embed`` (Parquet only): rows hold the bytes, as ``{"bytes", "path"}`` structs, which is how ``datasets``
  stores an ``Image``; the file's Hugging Face features metadata says so, so ``load_dataset`` decodes them.
* ``none`` (with ``--text-content``): no ``images`` column.

Parquet goes through pyarrow's ``ParquetWriter``: one row group per batch, so what is held is one batch.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ecoalign.export.formats import COLUMNS, Example, ExportFormat


class ImageMode(StrEnum):
    PATHS = "paths"
    EMBED = "embed"
    NONE = "none"


def images_dir(output: Path) -> Path:
    return output.with_name(output.stem + ".images")


class _ImageFiles:
    """Content-addressed image files: each distinct image is written once (the file system is the set)."""

    def __init__(self, output: Path) -> None:
        self.folder = images_dir(output)
        self.base = output.parent
        self.written = 0

    def path_of(self, image: Any) -> str:
        target = self.folder / f"{image.sha256}.{image.extension}"
        if not target.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            partial.write_bytes(image.data)
            os.replace(partial, target)
            self.written += 1
        return str(target.relative_to(self.base))


def _text_part() -> pa.DataType:
    return pa.struct([("type", pa.string()), ("text", pa.string())])


# review-labels (ecoalign.export.labels): a classifier's columns, not conversations.
LABEL_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "label": pa.bool_(),
    "verdict": pa.string(),
    "categories": pa.list_(pa.string()),
    "machine_flagged": pa.bool_(),
    "machine_categories": pa.list_(pa.string()),
    "machine_category_scores": pa.list_(pa.struct([("category", pa.string()), ("score", pa.float64())])),
    "policy": pa.struct([("id", pa.string()), ("version", pa.int64())]),
    "trace_id": pa.string(),
    "task_id": pa.string(),
    "decided_at": pa.string(),  # ISO 8601, UTC
}


def arrow_schema(fmt: ExportFormat, images: ImageMode, text_content: bool, with_ids: bool) -> pa.Schema:
    content = pa.string() if text_content else pa.list_(_text_part())
    conversation = pa.list_(pa.struct([("role", pa.string()), ("content", content)]))
    if fmt is ExportFormat.REVIEW_LABELS:
        fields = [(name, LABEL_TYPES[name]) for name in COLUMNS[fmt]]
        with_ids = False  # the row names its task and trace already
    else:
        fields = [(name, pa.bool_() if name == "label" else conversation) for name in COLUMNS[fmt]]
    if images is not ImageMode.NONE:
        fields.append(("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))))
    if with_ids:
        fields += [("job_id", pa.string()), ("node_ids", pa.list_(pa.string()))]
    schema = pa.schema(fields)
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": hf_features(schema)}})})


def _feature(kind: pa.DataType) -> Any:
    """A pyarrow type as a ``datasets`` feature (its JSON form), with image structs as ``Image``."""
    if pa.types.is_list(kind):
        return {"_type": "List", "feature": _feature(kind.value_type)}
    if pa.types.is_struct(kind):
        names = {kind.field(i).name for i in range(kind.num_fields)}
        if names == {"bytes", "path"}:
            return {"_type": "Image"}
        return {kind.field(i).name: _feature(kind.field(i).type) for i in range(kind.num_fields)}
    dtype = {pa.string(): "string", pa.bool_(): "bool", pa.binary(): "binary", pa.int64(): "int64",
             pa.float64(): "float64"}[kind]
    return {"dtype": dtype, "_type": "Value"}


def hf_features(schema: pa.Schema) -> dict[str, Any]:
    return {name: _feature(schema.field(name).type) for name in schema.names}


class ExampleWriter:
    """Appends batches of examples to ``output`` (``.jsonl`` or ``.parquet``); ``commit`` makes the file appear."""

    def __init__(
        self, output: Path, fmt: ExportFormat, images: ImageMode, *, text_content: bool, with_ids: bool
    ) -> None:
        self.output = output
        self.parquet = output.suffix == ".parquet"
        self.images = images
        self.schema = arrow_schema(fmt, images, text_content, with_ids)
        self.with_ids = "job_id" in self.schema.names
        self.partial = output.with_name(output.name + ".partial")
        self._files = _ImageFiles(output) if images is ImageMode.PATHS else None
        self._parquet: pq.ParquetWriter | None = None
        self._jsonl: IO[str] | None = None
        if self.parquet:
            self._parquet = pq.ParquetWriter(self.partial, self.schema, compression="zstd")
        else:
            self._jsonl = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115 - closed by commit/abort

    @property
    def image_files(self) -> int:
        return self._files.written if self._files is not None else 0

    def _row(self, example: Example) -> dict[str, Any]:
        row = {**example.columns, **example.ids}
        if self.images is ImageMode.PATHS:
            if self._files is None:
                raise RuntimeError("image paths asked for, but the writer has no image folder")
            paths = [self._files.path_of(image) for image in example.images]
            row["images"] = [{"bytes": None, "path": p} for p in paths] if self.parquet else paths
        elif self.images is ImageMode.EMBED:
            row["images"] = [{"bytes": image.data, "path": None} for image in example.images]
        if self.with_ids:
            row["job_id"] = example.job_id
            row["node_ids"] = list(example.node_ids)
        return row

    def write(self, examples: list[Example]) -> None:
        if not examples:
            return
        rows = [self._row(e) for e in examples]
        if self._parquet is not None:
            self._parquet.write_table(pa.Table.from_pylist(rows, schema=self.schema))
        else:
            if self._jsonl is None:
                raise RuntimeError("the writer is closed")
            self._jsonl.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None

    def commit(self) -> None:
        self._close()
        os.replace(self.partial, self.output)

    def abort(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)
