"""DNS-style UDP exchange on unconnected sockets (sendto/recvfrom) for tests.

server <port>: answers each datagram with b"answer:" + query. Prints "listening <port>".
client <port> <count>: sends <count> queries b"query-<i>" with sendto, reads each answer
  with recvfrom. Prints "done <local port>".
"""
import socket
import sys


def serve(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    print(f"listening {s.getsockname()[1]}", flush=True)
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(b"answer:" + data, addr)


def client(port: int, count: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    for i in range(count):
        s.sendto(f"query-{i}".encode(), ("127.0.0.1", port))
        s.recvfrom(2048)
    print(f"done {s.getsockname()[1]}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    else:
        client(int(sys.argv[2]), int(sys.argv[3]))
