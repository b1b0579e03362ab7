"""Content filter for chat replies and prompts: PII redaction and a block list.

Pure Python; the only I/O is reading the block-list file.
"""
from .blocklist import Blocklist, load_blocklist
from .content import ContentFilter
from .json_args import ArgumentStreamFilter
from .phones import DEFAULT_REGIONS as DEFAULT_PHONE_REGIONS
from .result import BLOCKED_TYPE, HIGH_RISK_TYPES, PII_TYPES, FilterResult
from .stream import StreamFilter

__all__ = [
    "BLOCKED_TYPE",
    "DEFAULT_PHONE_REGIONS",
    "HIGH_RISK_TYPES",
    "PII_TYPES",
    "ArgumentStreamFilter",
    "Blocklist",
    "ContentFilter",
    "FilterResult",
    "StreamFilter",
    "load_blocklist",
]
