"""Moderation of image-text items in OpenAI's moderation shape, with escalation inside a token budget.

One package for every entry (``ecoalign moderate``, ``POST /v1/moderations``, the Batch API's moderation lines), so
an item is judged the same way whichever door it comes through:

* ``inputs``: every accepted form of ``input`` (string, list of strings, list of parts) and the simple form;
* ``lines``: one JSONL line (``custom_id`` and its body) to a task of requests;
* ``policy`` / ``budget`` / ``tenant_budget``: the policy (categories, thresholds, costs, actions, escalation), the
  run's token budget, the tenant's budget;
* ``escalation``: the value-of-information rule that decides which evidence to buy (pure);
* ``judge``: the one LLM judge (its prompt and its lenient reply parser);
* ``moderator``: scan, decide, escalate within budget (``Moderator``);
* ``result`` / ``decisions``: the OpenAI result shape and the decision paths;
* ``traces``: the ``moderation_traces`` rows and the writer that stores them;
* ``factory``: the scanner and judge built from settings (``build_scanner``, ``ModerationEngine``);
* ``dedup``: duplicates decided once per tenant and policy (content keys, the claim protocol);
* ``service``: moderation for a tenant, and the review tasks it opens (``ecoalign.reviews``).
"""
