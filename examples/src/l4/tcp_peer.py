#!/usr/bin/env python3
"""A TCP peer for packet-path tests.

server PORT sink|stall   accept connections; sink reads and discards until EOF then answers "ok",
                         stall accepts and never reads (its receive window fills up to zero)
client HOST PORT BYTES [TIMEOUT]
                         sends BYTES bytes, half-closes, reads the answer; prints "sent N";
                         on TIMEOUT (a stalled server) aborts the connection with RST
"""
import socket
import struct
import sys
import threading


def sink(conn):
    with conn:
        while conn.recv(65536):
            pass
        conn.sendall(b"ok\n")


def server(port, behavior):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if behavior == "stall":
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)
    print("ready", flush=True)
    held = []
    while True:
        conn, _ = srv.accept()
        if behavior == "stall":
            held.append(conn)
        else:
            threading.Thread(target=sink, args=(conn,), daemon=True).start()


def client(host, port, total, timeout):
    sent = 0
    chunk = b"x" * 65536
    with socket.create_connection((host, port), timeout=timeout) as c:
        try:
            while sent < total:
                sent += c.send(chunk[: min(len(chunk), total - sent)])
            c.shutdown(socket.SHUT_WR)
            c.recv(16)
        except socket.timeout:
            # a stalled peer: abort with RST so nothing (zero-window probes) outlives the client
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    print(f"sent {sent}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), sys.argv[3])
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 10.0)
