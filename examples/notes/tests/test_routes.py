#!/usr/bin/env python3
"""notes-server's own test: the binary given as the first argument, started on a free port,
answers its routes and the runtime's, refuses what it should, and drains on SIGTERM (exit 0)."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def main(binary):
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--id", "notes-test",
                               "--max-notes", "2", "--drain-grace", "200ms"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, health, _ = call(port, "GET", "/health")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("notes-server did not answer /health")
                time.sleep(0.05)
        assert status == 200 and health["status"] == "healthy", health
        assert health["container"] == "notes-test" and health["notes"] == 0, health
        for text in ("first note", "second note", "third note here"):
            status, note, _ = call(port, "POST", "/api/notes", {"text": text})
            assert status == 201 and note["text"] == text, note
        status, board, headers = call(port, "GET", "/api/notes")
        assert status == 200 and headers["X-Container-Id"] == "notes-test", headers
        # --max-notes 2: the oldest went.
        assert [n["text"] for n in board["notes"]] == ["second note", "third note here"], board
        status, words, _ = call(port, "GET", "/api/notes/words")
        assert status == 200 and words["words"] == 5, words
        status, error, _ = call(port, "POST", "/api/notes", {"text": 5})
        assert status == 400 and "text" in error["error"], error
        status, error, _ = call(port, "DELETE", "/api/notes")
        assert status == 405, error
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
        assert "notes_stored 2" in metrics and "notes_created_total 3" in metrics, metrics
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0, "no clean drain"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    print("notes-server: every route answered as it should, and it drained")


if __name__ == "__main__":
    main(sys.argv[1])
