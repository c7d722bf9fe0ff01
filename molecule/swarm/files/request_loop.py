"""Request loop of the swarm scenario: GET / on the host-mode port of every node, round robin,
each request failing over to the next nodes (like a load balancer with retries) until one
answers. Runs until the stop file exists (or --max-seconds), then prints a JSON summary:
requests, failed (no node answered), node_errors (per address), answers (per body's first
two words, e.g. "version 2")."""

import argparse
import json
import os
import socket
import time


def get(address, port, timeout):
    with socket.create_connection((address, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    head, body = (data.split(b"\r\n\r\n", 1) + [b""])[:2]
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0] + b" ":
        raise OSError("bad answer %r" % head[:40])
    return " ".join(body.decode("utf-8", "replace").split()[:2])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("addresses", nargs="+")
    args = parser.parse_args()
    summary = {"requests": 0, "failed": 0, "node_errors": {a: 0 for a in args.addresses}, "answers": {}}
    start = time.monotonic()
    turn = 0
    while not os.path.exists(args.stop_file) and time.monotonic() - start < args.max_seconds:
        order = args.addresses[turn % len(args.addresses):] + args.addresses[:turn % len(args.addresses)]
        turn += 1
        summary["requests"] += 1
        for address in order:
            try:
                answer = get(address, args.port, args.timeout)
            except OSError:
                summary["node_errors"][address] += 1
                continue
            summary["answers"][answer] = summary["answers"].get(answer, 0) + 1
            break
        else:
            summary["failed"] += 1
        time.sleep(args.pause)
    summary["seconds"] = round(time.monotonic() - start, 1)
    summary["stopped"] = os.path.exists(args.stop_file)
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
