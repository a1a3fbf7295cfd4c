"""Every genforge sub-command has an endpoint, or a reason to stay on the command line
(tests/test_studio_api.py checks this table against the CLI's parser and the app's routes)."""
from __future__ import annotations

ENDPOINTS: dict[str, list[str]] = {
    "train": ["POST /api/jobs/train", "POST /api/preflight"],  # --dry-run: the preflight
    "distill": ["POST /api/jobs/distill"],
    "generate": ["POST /api/jobs/generate", "POST /api/models/{job_id}/sample"],
    "evaluate": ["POST /api/jobs/evaluate"],
    "features": ["POST /api/jobs/features"],
    "harmonize": ["POST /api/inputs", "POST /api/jobs/harmonize"],
    "complete": ["POST /api/inputs", "POST /api/jobs/complete"],
    "audit": ["POST /api/jobs/audit", "PUT /api/datasets/{dataset_id}/manifest"],
    "detect": ["POST /api/detect"],
    "verify": ["POST /api/verify"],
    "info": ["GET /api/models/{job_id}"],
    "keys": ["GET /api/keys"],  # keys show; keys init stays on the command line (below)
}

CLI_ONLY: dict[str, str] = {
    "keys init": "makes the signing identity of this machine's user; a web request should not "
                 "replace it (the studio signs with the keys it finds, made on first use)",
    "demo": "a first look from the terminal; in the studio, the same is POST /api/jobs/train "
            "with data fashion-mnist-sample, then POST /api/models/{job_id}/sample",
    "studio": "starts this server",
    "export": "makes files for programs without PyTorch (ONNX); a studio model is exported from "
              "the terminal with genforge export, its folder being in the studio home",
}


def parity() -> dict:
    return {"endpoints": ENDPOINTS, "cli_only": CLI_ONLY}
