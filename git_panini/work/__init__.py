"""The worker: claims and leases, the codec planner, packing segments, the polling loop."""
