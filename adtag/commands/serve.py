"""adtag serve: the HTTP API and upload page for a trained model."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from adtag.errors import AdtagError

TOKEN_ENV = "ADTAG_SERVE_TOKEN"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP: JSON API, video uploads and a web page",
        description=(
            "Serve MODEL_DIR over HTTP (FastAPI + uvicorn). POST /v1/tag takes a multipart video upload "
            "or JSON modalities, POST /v1/tag/batch several JSON items; GET /v1/model, GET /healthz; "
            "OpenAPI at /openapi.json, Swagger UI at /docs and ReDoc at /redoc (served from the package, no CDN); "
            "an upload page at /. The model loads once; uploads are extracted by a bounded pool of workers, and "
            "requests beyond its queue get 503 + Retry-After. Every input is bounded: body size, body rate "
            "(408 for a body that trickles in), JSON depth, array rows and columns, text per modality "
            "($ADTAG_MAX_TEXT_CHARS, $ADTAG_MAX_ROWS, $ADTAG_MAX_DIM) and time per prediction; /healthz says "
            '"saturated" while a pool is full.'
        ),
    )
    p.add_argument("model_dir", type=Path, help="folder written by 'adtag train'")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="videos extracted at once, each worker with its own encoders (default: 1)",
    )
    p.add_argument("--queue", type=int, default=4, help="uploads waiting for a worker before 503 (default: 4)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per worker and for prediction (default: $ADTAG_THREADS or 1)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=200, help="largest accepted upload in MB, else 413 (default: 200)"
    )
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token every call but /healthz (and the page) must carry (default: ${TOKEN_ENV}; unset: no token)",
    )
    p.add_argument(
        "--private-docs",
        action="store_true",
        help="/docs, /redoc and /openapi.json need the token too (default: open; they hold no model data)",
    )
    p.add_argument(
        "--predict-timeout",
        type=float,
        default=30.0,
        help="seconds a JSON tag request may wait and run before 503 (default: 30)",
    )
    p.add_argument(
        "--min-body-rate-kb",
        type=float,
        default=16.0,
        help="KiB/s a request body must average after its first 3 s, else 408 (default: 16)",
    )
    p.add_argument(
        "--tmp-dir", type=Path, default=None, help="where uploads are written briefly (default: system temp)"
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: info)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from adtag import runtime

    threads = runtime.configure(args.threads)
    if args.workers < 1 or args.queue < 0:
        raise AdtagError("--workers must be >= 1 and --queue >= 0")
    if args.predict_timeout <= 0 or args.min_body_rate_kb <= 0:
        raise AdtagError("--predict-timeout and --min-body-rate-kb must be > 0")
    if not 0 < args.port < 65536:
        raise AdtagError(f"--port {args.port}: not a TCP port")
    if not Path(args.model_dir).is_dir():
        raise AdtagError(f"{args.model_dir}: model folder not found")
    import uvicorn

    from adtag.serve import ServeConfig, create_app

    config = ServeConfig(
        model_dir=args.model_dir,
        workers=args.workers,
        queue=args.queue,
        threads=threads,
        max_upload=int(args.max_upload_mb * 1024 * 1024),
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        private_docs=args.private_docs,
        predict_timeout_s=args.predict_timeout,
        min_body_rate=args.min_body_rate_kb * 1024,
        tmp_dir=args.tmp_dir,
    )
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0
