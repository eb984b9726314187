"""Thread-per-request API for the correlation tests: GET /item/<n> reads Redis key item:<n>.
Usage: /usr/bin/python3 threaded_api.py <port> <redis port>. Prints "listening <port>"."""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

PORT, REDIS_PORT = int(sys.argv[1]), int(sys.argv[2])
local = threading.local()


def client():
    # one connection per thread: a request's Redis call happens on the thread that read it
    if not hasattr(local, "r"):
        local.r = redis.Redis(host="127.0.0.1", port=REDIS_PORT, socket_timeout=5)
    return local.r


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        n = self.path.rsplit("/", 1)[-1]
        value = client().get(f"item:{n}") or b"none"
        self.send_response(200)
        self.send_header("Content-Length", str(len(value)))
        self.end_headers()
        self.wfile.write(value)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
