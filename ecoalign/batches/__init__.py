"""The OpenAI Batch API (``/v1/files``, ``/v1/batches``) as a service: the API and the worker's task shells
(``workers/batch_tasks.py``) call it; SQL lives in ``ecoalign.store.batches``.

Flow: ``start.begin_batch`` reads the input file once, inserts one ``batch_items`` row per non-blank line and sends
one message per usable line (``batch_moderation_line`` on the score queue: the scan is CPU-bound;
``batch_chat_line`` on the model queue: the job waits on the model); ``run.run_line`` claims, computes and records
one line; the last line finalizes (``output``); ``recovery`` is the reaper; ``cancel`` is shared by the cancel
endpoint and the reaper's expiry.

Why it is safe under at-least-once delivery (no chords, Postgres is the truth):

* **Claim** (``claim``): ``UPDATE batch_items SET status='running', attempts=attempts+1 WHERE status IN
  ('pending','running')`` returns the attempt number, which fences the result: the line is finished by ``UPDATE
  ... WHERE status='running' AND attempts=:attempt``, so of two deliveries only the last claimer can record it, and
  a line that is finished is never claimed again (``UNIQUE (batch_id, custom_id)``: a rerun never redoes a
  finished ``custom_id``). A line delivered more than ``ECOALIGN_BATCH_MAX_ATTEMPTS`` times fails as poison.
* **Counts** (``finish``) move in the same transaction as the line's status (``requests_completed`` /
  ``requests_failed`` on the ``batches`` row, whose row lock serialises finishing lines); after that update the
  transaction counts the lines still pending or running: the one that sees zero is the last, and it finalizes.
* **Finalize** (``output``) assembles the output and error files from the rows (ordered by line, ids derived from
  row ids, so doing it twice gives the same files) and sets ``completed`` in one transaction; a second run does
  nothing.
* **Reaper** (``recovery``, beat): re-sends the start of a batch stuck in ``validating``, re-sends the unfinished
  lines of a batch with no progress for ``ECOALIGN_BATCH_STALL_S`` (longer than the task time limit, so nothing
  is still running), finalizes a batch whose lines are all done, and expires batches past their completion window.

Everything batch work needs (database, settings, moderation engine, chat services, the message sender) is one
explicit ``runtime.BatchRuntime``, built by the worker over its process's composition root and handed to every function.
"""
