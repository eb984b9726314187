"""TCP request/response pair for tests.

server <port> [host]: accepts connections; for each received chunk replies b"pong:" + chunk[:16].
  Prints "listening <port>" when ready. host defaults to 127.0.0.1 (use ::1 for IPv6).
client <port> <mode> [n] [host]: connects and sends, then reads one reply per request.
  mode "send":    sendall(b"ping" + b"x" * (n - 4)) once
  mode "sendmsg": sendmsg([b"ab", b"cd", b"ef"]) then reads with recvmsg
  mode "writev":  os.writev(fd, [b"wv1", b"wv2"]) then os.readv
  mode "wait":    connects, prints "connected", waits for a line on stdin, then sends b"late"
Prints "done".
"""
import os
import socket
import sys


def serve(port: int, host: str) -> None:
    srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(16)
    print(f"listening {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(b"pong:" + data[:16])


def client(port: int, mode: str, n: int, host: str) -> None:
    s = socket.create_connection((host, port))
    if mode == "wait":
        print("connected", flush=True)
        sys.stdin.readline()
        s.sendall(b"late")
        s.recv(100)
    elif mode == "send":
        payload = b"ping" + b"x" * max(0, n - 4)
        s.sendall(payload)
        s.recv(100)
    elif mode == "sendmsg":
        s.sendmsg([b"ab", b"cd", b"ef"])
        buf = bytearray(100)
        s.recvmsg_into([buf])
    elif mode == "writev":
        os.writev(s.fileno(), [b"wv1", b"wv2"])
        os.readv(s.fileno(), [bytearray(5), bytearray(100)])
    s.close()
    print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1")
    else:
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
        client(int(sys.argv[2]), sys.argv[3], n, sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1")
