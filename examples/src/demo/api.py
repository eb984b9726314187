"""Demo price API (Python, one thread per request): GET /price?item=N reads Redis, falls back to
PostgreSQL and caches the answer. Usage: /usr/bin/python3 api.py <port> <data host>"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg2
import redis

PORT, DATA = int(sys.argv[1]), sys.argv[2]
cache = redis.Redis(host=DATA, port=6379, socket_timeout=2)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/price":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        item = parse_qs(url.query).get("item", ["1"])[0]
        price = cache.get(f"price:{item}")
        if price is None:
            db = psycopg2.connect(host=DATA, port=5432, user="postgres", dbname="shop")
            try:
                with db.cursor() as cur:
                    cur.execute("SELECT price FROM items WHERE id = %s", (int(item),))
                    row = cur.fetchone()
            finally:
                db.close()
            price = str(row[0]) if row else "0"
            cache.set(f"price:{item}", price, ex=1)
        body = json.dumps({"item": item, "price": price if isinstance(price, str) else price.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
print(f"listening {PORT}", flush=True)
server.serve_forever()
