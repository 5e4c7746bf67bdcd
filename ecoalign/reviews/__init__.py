"""The human review queue (issue 14, item 3): review tasks opened by the moderation path, leased to one reviewer
at a time, settled by a verdict kept next to the machine's decision (``service``; SQL in ``ecoalign.store.reviews``).
"""
