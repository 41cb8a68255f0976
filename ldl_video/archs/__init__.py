"""Networks only: no file access here (checkpoints.py recognises and loads them)."""

from .msrresnet import MSRResNet
from .rrdbnet import RRDBNet
from .srvgg import SRVGGNetCompact

__all__ = ["MSRResNet", "RRDBNet", "SRVGGNetCompact"]
