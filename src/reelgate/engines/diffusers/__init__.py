"""The ``diffusers`` engine: Wan, LTX-Video, CogVideoX and HunyuanVideo through diffusers.

Importing this package needs neither torch nor diffusers; the generation process imports them.
See :mod:`.engine` for the failure policy and :mod:`.mapping` for the request mapping.
"""

from .engine import DiffusersEngine, ModelHealth
from .entry import EntryError, ModelEntry, parse_entry

__all__ = ["DiffusersEngine", "EntryError", "ModelEntry", "ModelHealth", "parse_entry"]
