"""The studio's routes: jobs (the queue, progress, files), data (datasets, uploads, inputs) and
models (information, quick samples, downloads, provenance checks, what the library offers)."""
