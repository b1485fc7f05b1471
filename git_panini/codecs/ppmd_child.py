"""Child process running the PPMd7 decoder, since pyppmd can corrupt its heap on hostile input."""

# Usage: python -I ppmd_child.py ORDER MEM SIZE MEMORY_LIMIT CPU_SECONDS < encoded > decoded
# Exit status: 0 decoded, 1 corrupt input (message on stderr), 3 trailing bytes; anything else is a crash.

import sys

try:
    import resource
except ImportError:   # Windows: no rlimits; a crash still stays in this process
    resource = None


def main() -> int:
    order, mem, size, memory_limit, cpu_seconds = map(int, sys.argv[1:6])
    if resource is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    import pyppmd

    data = sys.stdin.buffer.read()
    try:
        decoder = pyppmd.Ppmd7Decoder(order, mem)
        out = decoder.decode(data, size)
    except Exception as exc:  # pyppmd reports corruption as ValueError, SystemError, MemoryError, ...
        sys.stderr.write(f"{type(exc).__name__}: {exc}"[:200])
        return 1
    if decoder.unused_data:
        return 3
    sys.stdout.buffer.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
