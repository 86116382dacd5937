"""What HAProxy 2.6 does with a new connection that sends nothing: it is closed after timeout
http-request, before an idle keep-alive connection would be (timeout http-keep-alive).
"""

import socket
import time


def idle_seconds(port, first_request):
    """Opens a connection, optionally sends one request and reads its answer, then waits without
    sending anything; returns how long after the last byte sent HAProxy closed it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(30.0)
        if first_request:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: tandem\r\n\r\n")
            received = b""
            while b"}" not in received:
                received += sock.recv(4096)
        idle_from = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return time.monotonic() - idle_from


def test_new_idle_connection_is_closed_before_an_idle_keep_alive_one(make_stack, report):
    """HAProxy 2.6 gives a connection that has not sent its first request timeout http-request
    (counted from the accept), not timeout client nor http-keep-alive; a connection idle after an
    answer gets timeout http-keep-alive. The stack uses short, distinct values to tell them apart
    (timeout client stays at its 30 s)."""
    http_request, keep_alive = 1.0, 2.5
    stack = make_stack(instances=1, overrides={
        "tandem_lb_timeout_http_request": f"{int(http_request * 1000)}ms",
        "tandem_lb_timeout_http_keep_alive": f"{int(keep_alive * 1000)}ms"})
    new_idle = idle_seconds(stack.lb_port, first_request=False)
    kept_alive = idle_seconds(stack.lb_port, first_request=True)
    report(f"timeout http-request {http_request} s, http-keep-alive {keep_alive} s, client "
           f"{stack.variables['tandem_lb_timeout_client']}: a new connection that sends nothing "
           f"is closed after {new_idle:.2f} s, an idle keep-alive one after {kept_alive:.2f} s")
    assert http_request - 0.05 <= new_idle < http_request + 0.5
    assert keep_alive - 0.05 <= kept_alive < keep_alive + 0.5
