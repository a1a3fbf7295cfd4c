"""Shared test set-up."""
import os

import torch

# Under pytest-xdist each worker gets one thread: two workers x two threads on two cores would
# oversubscribe the CPU and run several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
