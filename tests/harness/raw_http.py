"""HTTP/1.1 over a bare socket, for what no HTTP client library sends: many requests pipelined on
one connection, written in one go."""

import re
import socket
import time

_CONTENT_LENGTH = re.compile(rb"(?im)^content-length: *(\d+)\r?$")


def pipelined(port, path, count, host="127.0.0.1", timeout=60.0):
    """Sends `count` GET path pipelined on one connection to host:port and reads the answers;
    returns their statuses in order (fewer when the server closed first or `timeout` passed)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    statuses = []
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port)) as sock:
        sock.sendall(request * count)
        received = b""
        while len(statuses) < count and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            received += chunk
            while b"\r\n\r\n" in received:
                head, rest = received.split(b"\r\n\r\n", 1)
                length = int(_CONTENT_LENGTH.search(head).group(1))
                if len(rest) < length:
                    break
                statuses.append(int(head.split(b" ")[1]))
                received = rest[length:]
    return statuses
