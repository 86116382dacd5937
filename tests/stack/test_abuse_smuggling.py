"""Request smuggling: a request hidden in another's body, which the balancer passes on as body and
an instance reads as a request of its own, reaching the instance unseen by the balancer (no
per-client limit, no request id, no log line). Each payload hides a request for a marker path;
a request reaches an instance only through HAProxy's own parsing if it carries a request id that
HAProxy logged. Sent through HAProxy and straight to an instance (the instances are on loopback
or a private network, but the parser must not depend on that)."""

import re
import socket
import time

from tests.harness.processes import tail

HIDDEN = "GET /smuggled-{n} HTTP/1.1\r\nHost: x\r\n\r\n"
PAYLOADS = {
    # Content-Length and chunked together: RFC 9112 says chunked wins; a reader that takes the
    # length would see the hidden request.
    "CL.TE": "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + HIDDEN,
    # chunked that one reader does not recognise as chunked.
    "TE obfuscated": "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\n"
                     "Transfer-Encoding: xchunked\r\n\r\n" + HIDDEN,
    "TE twice": "POST /api/session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n" + HIDDEN,
    # Two bytes other than CRLF after chunk data: a lenient reader skips them, and the body's
    # end moves.
    "chunk without CRLF": "POST /api/session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                          "\r\n\r\n2\r\n{}XX0\r\n\r\n" + HIDDEN,
    # Two Content-Length headers that disagree.
    "CL.CL": "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
             "Content-Length: 45\r\n\r\n" + HIDDEN,
    # A bare LF inside the header section, read as a line end by one reader only.
    "bare LF": "POST /api/session HTTP/1.1\r\nHost: x\r\nX-A: b\nContent-Length: 45\r\n\r\n"
               + HIDDEN,
}


def send_raw(port, payload):
    """Sends payload on one connection; returns what came back before the close (5 s at most)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload.encode())
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return received


def test_no_request_reaches_an_instance_unseen_by_haproxy(make_stack, report):
    stack = make_stack(instances=2, server_args=["--access-log", "all"])
    answers = {}
    marker = 0
    for name, payload in PAYLOADS.items():
        for target, port in (("haproxy", stack.lb_port),
                             ("app-1 directly", stack.instances["app-1"].port)):
            marker += 1
            received = send_raw(port, payload.replace("{n}", str(marker)))
            answers[(name, target, marker)] = received.split(b"\r\n", 1)[0].decode(errors="replace")
    # The instances log each request as they answer it; give the last lines a moment to land.
    time.sleep(0.5)

    haproxy_log = stack.haproxy_log.read_text(errors="replace")
    logged_ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                                haproxy_log))
    reached = []  # (instance, target, request id) of every marker request an instance answered
    for instance in stack.instances.values():
        for line in instance.log_path.read_text(errors="replace").splitlines():
            found = re.search(r'"target":"(/smuggled-\d+)"', line)
            if found:
                request_id = re.search(r'"request_id":"([^"]*)"', line)
                reached.append((instance.id, found.group(1), request_id.group(1) if request_id else ""))
    through_haproxy = [r for r in reached if r[2] in logged_ids]
    unseen = [r for r in reached if r[2] not in logged_ids]

    report("answers: " + "; ".join(f"{name} via {target}: {status}"
                                   for (name, target, _), status in answers.items()))
    report(f"marker requests answered by an instance: {len(reached)}, of which through "
           f"HAProxy's own parsing (request id in its log) {len(through_haproxy)}, unseen "
           f"{unseen}")
    assert not unseen, f"smuggled past HAProxy: {unseen}\n{tail(stack.haproxy_log)}"
    # Straight to an instance, every payload is refused as a whole: nothing hidden is served.
    direct_markers = {f"/smuggled-{m}" for (_, target, m) in answers if target != "haproxy"}
    assert not [r for r in reached if r[1] in direct_markers], reached
    for (name, target, _), status in answers.items():
        if target != "haproxy":
            assert status.startswith("HTTP/1.1 400") or status.startswith("HTTP/1.1 413") or \
                status.startswith("HTTP/1.1 501"), (name, status)
