"""Device and precision choices, with messages that say what to pick instead."""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import torch

from .errors import LdlError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """auto (the first CUDA device when there is one, else the CPU), cpu, cuda or cuda:N."""
    if isinstance(spec, torch.device):
        return spec
    text = str(spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise LdlError(f"device {text} asked for but no CUDA GPU is usable here; use device cpu or auto")
        index = int(text.split(":", 1)[1]) if ":" in text and text.split(":", 1)[1].isdigit() else 0
        if ":" in text and not text.split(":", 1)[1].isdigit():
            raise LdlError(f"bad device {spec!r}; write cuda:N with N a GPU index")
        if index >= torch.cuda.device_count():
            raise LdlError(f"device {text} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return torch.device("cuda", index)
    raise LdlError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")


# CPU flags that mean bf16 dot products run in hardware (x86: AVX512-BF16 on Intel Cooper Lake
# and AMD Zen 4+, AMX on Sapphire Rapids+; Arm: the BF16 extension). Without them oneDNN emulates
# bf16 and it is slower than fp32.
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}
CPU_BF16_ENV = "LDL_CPU_BF16"  # 0: treat the CPU as having no bf16 (tests, comparisons); 1: as having it


@functools.cache
def _cpuinfo_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware; $LDL_CPU_BF16=0/1 overrides the detection."""
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return False  # Apple's M1/M2 lack it and torch's CPU bf16 is emulated there
    return bool(_cpuinfo_flags() & _BF16_FLAGS)


def resolve_precision(
    spec: str | None,
    device: torch.device,
    supports_fp16: bool = True,
    supports_bf16: bool = True,
    cpu_bf16: bool = False,
) -> torch.dtype:
    """auto: fp16 on CUDA when the network takes it (else bf16, else fp32); on the CPU bf16 when
    the CPU has it in hardware and the network is measured close to fp32 in it (`cpu_bf16`),
    else fp32."""
    text = str(spec or "auto").strip().lower()
    if text == "auto":
        if device.type == "cuda":
            if supports_fp16:
                return torch.float16
            if supports_bf16 and torch.cuda.is_bf16_supported():
                return torch.bfloat16
        elif device.type == "cpu" and cpu_bf16 and supports_bf16 and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    if text not in PRECISIONS:
        raise LdlError(f"unknown precision {spec!r}; use auto, fp32, fp16 or bf16")
    if text == "fp16" and device.type == "cpu":
        raise LdlError("fp16 needs a CUDA device; on the CPU use precision fp32 or bf16")
    if text == "fp16" and not supports_fp16:
        raise LdlError("this network is unstable in fp16; use precision bf16 or fp32")
    if text == "bf16" and not supports_bf16:
        raise LdlError("this network does not run in bf16; use precision fp16 or fp32")
    return PRECISIONS[text]
