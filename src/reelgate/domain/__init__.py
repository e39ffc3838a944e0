"""Pure domain: request models, validation, capabilities, units, task states, ids, errors.

Imports nothing of reelgate outside this package and no web framework, database driver or torch.
"""

from .errors import ReelgateError
from .models import Capabilities, Catalog, ModelSpec, Units
from .requests import Text2VideoRequest
from .tasks import TaskRecord, TaskStatus

__all__ = [
    "Capabilities",
    "Catalog",
    "ModelSpec",
    "ReelgateError",
    "TaskRecord",
    "TaskStatus",
    "Text2VideoRequest",
    "Units",
]
