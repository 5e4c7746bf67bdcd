"""Signed webhooks (issue 17): a tenant's endpoints hear when its batches and jobs end.

* ``events``: the one table of event types a tenant may subscribe to;
* the outbox: an event row is written in the transaction of the change it reports (``ecoalign.store.webhooks.
  record_event``; batches through ``outbox``), so no committed completion is missed and none is sent for a change
  that rolled back;
* ``delivery``: a periodic dispatcher (beat) takes the due deliveries and sends one Celery task each; the task POSTs
  the event signed per Standard Webhooks (``signing``) to the endpoint's checked, pinned address (``targets``), and
  records the answer; failures are retried with exponential backoff and jitter (``backoff``) for a bounded window;
* ``endpoints``: create, list, delete, rotate the secret, the delivery log and a manual redeliver (the API's logic).
"""
