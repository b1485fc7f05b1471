"""Git's pkt-line framing, as used by the long-running filter protocol."""

from __future__ import annotations

MAX_DATA = 65516
WRITE_BATCH = 1 << 20   # bytes of packets gathered before one write to the pipe
FLUSH = None  # what read_packet returns for a flush packet


class ProtocolError(Exception):
    pass


class PktReader:
    def __init__(self, stream):
        self.stream = stream

    def read_packet(self) -> bytes | None:
        header = self.stream.read(4)
        if len(header) < 4:
            raise EOFError("git closed the filter pipe")
        try:
            length = int(header, 16)
        except ValueError:
            raise ProtocolError(f"bad pkt-line header {header!r}") from None
        if length == 0:
            return FLUSH
        if length < 4 or length > MAX_DATA + 4:
            raise ProtocolError(f"bad pkt-line length {length}")
        data = self.stream.read(length - 4)
        if len(data) < length - 4:
            raise EOFError("git closed the filter pipe mid-packet")
        return data

    def read_text_list(self) -> list[str]:
        """Text packets up to the next flush, newlines stripped."""
        out = []
        while (pkt := self.read_packet()) is not FLUSH:
            out.append(pkt.decode("utf-8", "surrogateescape").rstrip("\n"))
        return out

    def read_content(self):
        """Yield binary packets up to the next flush."""
        while (pkt := self.read_packet()) is not FLUSH:
            yield pkt


class PktWriter:
    """Packets are gathered and written WRITE_BATCH bytes at a time, and always by flush(): one write
    per 64 KiB packet made a ping-pong of the pipe with git (two context switches per packet), which
    halved smudge throughput."""

    def __init__(self, stream):
        self.stream = stream
        self._parts: list = []
        self._size = 0

    def packet(self, data: bytes | memoryview):
        if not isinstance(data, bytes) and not (isinstance(data, memoryview) and data.readonly):
            data = bytes(data)   # written later: the caller may reuse a mutable buffer
        self._parts += (b"%04x" % (len(data) + 4), data)
        self._size += len(data) + 4
        if self._size >= WRITE_BATCH:
            self._write()

    def _write(self):
        if self._parts:
            self.stream.write(b"".join(self._parts))
            self._parts, self._size = [], 0

    def flush(self):
        self._parts.append(b"0000")
        self._write()
        self.stream.flush()

    def text_list(self, lines: list[str]):
        for line in lines:
            self.packet(line.encode("utf-8", "surrogateescape") + b"\n")
        self.flush()

    def content(self, data: bytes | memoryview):
        view = memoryview(data)
        for pos in range(0, len(view), MAX_DATA):
            self.packet(view[pos:pos + MAX_DATA])
