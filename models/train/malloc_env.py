"""glibc's allocator set up for PyTorch training on these machines; every training entry point
calls ensure() first.

PyTorch allocates large tensors for every op of a training step. With glibc's defaults each
one above 128 kB (dynamically up to 32 MB) is a fresh mmap that is faulted in page by page
and unmapped again when freed, and freed heap is trimmed back to the kernel: the step spends
most of its time in page faults. Keeping freed memory in the heap removes that:
`models/train/bench_step.py` measured the speed-up (numbers in models/train/README.md).
glibc reads these variables once, when the process starts, so ensure() sets them and
re-executes the script; an explicit setting in the environment is left alone.
"""
import os
import sys

SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",  # never mmap a single allocation (max value)
    "MALLOC_TRIM_THRESHOLD_": "4294967296",  # never give freed heap back to the kernel
    "MALLOC_TOP_PAD_": "1073741824",         # grow the heap 1 GiB at a time
}


def ensure():
    """Re-executes the running script once with SETTINGS in its environment (unless the
    variables are already there, or AUDIOCLASS_DEFAULT_MALLOC=1 asks for glibc's defaults)."""
    if os.environ.get("AUDIOCLASS_DEFAULT_MALLOC") == "1":
        return
    if all(k in os.environ for k in SETTINGS):
        return
    env = dict(os.environ)
    for k, v in SETTINGS.items():
        env.setdefault(k, v)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
