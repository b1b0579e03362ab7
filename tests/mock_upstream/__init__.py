"""A mock OpenAI upstream on pure asyncio, scriptable per request (see ``server``); tests and the benchmark use it."""
from .server import Options, run_in_thread

__all__ = ["Options", "run_in_thread"]
