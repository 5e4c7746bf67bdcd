"""Bulk moderation of JSONL files for ``ecoalign moderate`` (the OpenAI Batch API is another product): input
lines in, OpenAI Batch output lines out, resumable after a kill.

Input lines (one item each; blank lines are ignored):

* OpenAI Batch input: ``{"custom_id", "method": "POST", "url": "/v1/moderations", "body": {"input": ...}}`` where
  ``input`` is a string, a list of strings (one result per element) or a list of parts (``{"type": "text"}`` and
  ``{"type": "image_url", "image_url": {"url"}}``, one result); images are data URLs or http(s) URLs (remote
  fetching is off unless enabled);
* the simple form: ``{"custom_id", "text", "images": [path relative to the input file | URL | data URL]}``.

Output lines are OpenAI Batch output lines: ``{id, custom_id, response: {status_code, request_id, body}, error:
null}`` with a ``/v1/moderations`` body, or ``{id, custom_id | null, response: null, error: {code, message,
line}}`` for a line that cannot be used. A bad line produces exactly one error line and nothing else fails.

Why the runner is built this way: the input is streamed (memory stays flat whatever its size); finished lines are
appended with one ``write`` per group of whole lines right after their traces are committed, so a ``kill -9``
loses at most the items in flight; ``resume`` reads the ``custom_id``s already in the output (dropping a
half-written last line) and skips them.

Modules: ``reading`` (raw lines), ``output`` (output and error lines), ``idset`` and ``resume`` (what OUTPUT already
holds), ``chunks`` (a chunk of lines moderated, in threads or child processes), ``writer`` (lines after their
traces), ``runner`` (``run_moderation``), ``api_client`` (``--api``), ``cli`` (the ``ecoalign moderate`` command).
A line's JSON, ``custom_id`` and content are parsed by ``ecoalign.moderation.lines``, shared with the Batch API.
"""
