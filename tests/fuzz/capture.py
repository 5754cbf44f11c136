#!/usr/bin/env python3
"""Captures real peers' bytes as fuzz seeds (how tests/fuzz/corpus/ was made).

  capture.py requests OUT_DIR PREFIX -- CLIENT_COMMAND...
      listens on 127.0.0.1:PORT (the command's {port}), answers every request head with a
      small valid reply, and writes each distinct request head it received to OUT_DIR/PREFIX-N
  capture.py raw OUT_FILE -- CLIENT_COMMAND...
      listens on 127.0.0.1:PORT, answers nothing, and writes what the first connection sent
      in its first second (a binary client's first requests, before it waits for replies)
  capture.py reply OUT_FILE PORT REQUEST
      sends REQUEST (\\r and \\n escapes allowed) to 127.0.0.1:PORT and writes every byte of
      the reply until the server closes

Every socket has a timeout and the client command a deadline, so a capture always ends.
"""
import os
import socket
import subprocess
import sys
import threading

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n\r\nmuxbench\n"


def serve(listener, heads, stop):
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=answer, args=(conn, heads, stop), daemon=True).start()


def answer(conn, heads, stop):
    conn.settimeout(2)
    buf = b""
    try:
        while not stop.is_set():
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head, buf = buf[:end + 4], buf[end + 4:]
                if head not in heads:
                    heads.append(head)
                conn.sendall(REPLY)
                continue
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
    except OSError:
        pass
    finally:
        conn.close()


def capture_requests(out_dir, prefix, command):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    heads, stop = [], threading.Event()
    thread = threading.Thread(target=serve, args=(listener, heads, stop), daemon=True)
    thread.start()
    argv = [a.replace("{port}", str(port)) for a in command]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
    stop.set()
    thread.join(2)
    os.makedirs(out_dir, exist_ok=True)
    for i, head in enumerate(heads):
        with open(os.path.join(out_dir, f"{prefix}-{i}"), "wb") as f:
            f.write(head)
    print(f"{prefix}: {len(heads)} distinct request heads")


def capture_raw(out_file, command):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(5)
    port = listener.getsockname()[1]
    argv = [a.replace("{port}", str(port)) for a in command]
    client = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = b""
    try:
        conn, _ = listener.accept()
        conn.settimeout(1)
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except socket.timeout:
            pass
        conn.close()
    finally:
        client.kill()
        client.wait(5)
    with open(out_file, "wb") as f:
        f.write(data)
    print(f"{out_file}: {len(data)} bytes")


def capture_reply(out_file, port, request):
    raw = request.encode().decode("unicode_escape").encode("latin-1")
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(raw)
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    with open(out_file, "wb") as f:
        f.write(reply)
    print(f"{out_file}: {len(reply)} bytes")


def main(argv):
    if len(argv) >= 5 and argv[0] == "requests" and argv[3] == "--":
        capture_requests(argv[1], argv[2], argv[4:])
    elif len(argv) >= 4 and argv[0] == "raw" and argv[2] == "--":
        capture_raw(argv[1], argv[3:])
    elif len(argv) == 4 and argv[0] == "reply":
        capture_reply(argv[1], argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
