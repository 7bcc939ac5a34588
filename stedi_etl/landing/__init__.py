"""The landing zone: listing a dataset's files and reading them into typed frames and quarantined records
(read.py), with the allocator setting that keeps batches from re-faulting memory (memory.py)."""
