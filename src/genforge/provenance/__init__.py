"""Provenance of generated items: model cards (model_card.py) and an invisible watermark."""
from .watermark import (PAYLOAD_BITS, Detection, WatermarkTooSmall, detect, embed, min_size,
                        psnr)

__all__ = ["PAYLOAD_BITS", "Detection", "WatermarkTooSmall", "detect", "embed", "min_size", "psnr"]
