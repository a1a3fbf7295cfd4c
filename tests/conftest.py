"""Shared test set-up."""
import os
import tempfile

import pytest
import torch

# Under pytest-xdist each worker gets one thread: two workers x two threads on two cores would
# oversubscribe the CPU and run several times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread():
    """One thread for a module of tiny tensors: OpenMP hand-offs cost more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --precision auto resolves to fp32 in tests, so their figures are the same on every CPU (auto
# measures fp32 against bf16 where the CPU computes bf16 natively); the tests of auto unset it.
os.environ["GENFORGE_PRECISION"] = "fp32"

# Signing keys that generation creates on first use go to a throwaway folder, never the user's.
os.environ["GENFORGE_KEYS"] = tempfile.mkdtemp(prefix="genforge-test-keys-")


@pytest.fixture(scope="session", autouse=True)
def signing_keys():
    """The development keys made once, up front: whichever test signs first would otherwise
    print the first-use warning, and tests that count the lines a command prints would depend
    on the order xdist runs them in."""
    from genforge.provenance import keys
    keys.init_keys(os.environ["GENFORGE_KEYS"], force=True)
