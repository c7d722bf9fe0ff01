"""Lab webhook receiver: appends every POST body (one JSON document a line) to a file."""
import http.server
import json

LOG = "/var/lib/lab-webhook/posts.jsonl"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(LOG, "a", encoding="utf-8") as out:
            out.write(json.dumps({"path": self.path, "body": json.loads(body or b"null")}) + "\n")
        self.send_response(200)
        self.end_headers()


http.server.HTTPServer(("127.0.0.1", 9099), Handler).serve_forever()
