"""The core: the gateway pipeline, the prompt guard, bounds, metering, reply streams and /chat turns.

No Flask here: the doors in ``app.api`` translate HTTP to these calls and back.
"""
