"""Networks only: no file access here (checkpoints.py recognises and loads them)."""

from .discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from .msrresnet import MSRResNet
from .rrdbnet import RRDBNet
from .srvgg import SRVGGNetCompact
from .vgg import VGG19Features

__all__ = ["MSRResNet", "RRDBNet", "SRVGGNetCompact", "UNetDiscriminatorSN", "VGG19Features", "VGGStyleDiscriminator"]
