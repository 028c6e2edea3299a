"""Many dumps at once: walk each dump in its own process (or on a Dask cluster), group
identical stacks across dumps, compare two dumps stack by stack."""
