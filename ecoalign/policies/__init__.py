"""Tenant moderation policies, versioned: the document schema (``schema``), the policy file of ``ecoalign moderate
--policy-file`` (``schema.load_policy_file``) and the service the API and Batch lines use (``service``: create,
new version, read, and resolve the policy a request is decided under). Every statement is in
``ecoalign.store.policies``; the policy itself is ``ecoalign.moderation.policy.ModerationPolicy``.
"""
