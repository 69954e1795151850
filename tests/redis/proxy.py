#!/usr/bin/env python3
"""A loopback TCP proxy for partition tests.

    proxy.py LISTEN_PORT|0 TARGET_PORT

Listens on 127.0.0.1:LISTEN_PORT (0: a free port) and forwards every connection to
127.0.0.1:TARGET_PORT, both ways. Prints the port it listens on, one line, once it
accepts connections. `kill -STOP` on the proxy freezes every connection through it (a
partition: bytes sent are neither delivered nor refused), `kill -CONT` heals it. When
either side closes, the other is closed too. Exits on SIGTERM or SIGINT.
"""

import selectors
import socket
import sys


def main(argv):
    if len(argv) != 3 or not argv[1].isdigit() or not argv[2].isdigit():
        print("usage: proxy.py LISTEN_PORT|0 TARGET_PORT", file=sys.stderr)
        return 2
    target = ("127.0.0.1", int(argv[2]))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", int(argv[1])))
    except OSError as e:
        print(f"proxy.py: cannot listen on port {argv[1]}: {e.strerror}", file=sys.stderr)
        return 1
    listener.listen(128)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    # peer[sock] = the socket its bytes go to.
    peer = {}

    def close(sock):
        for s in (sock, peer.get(sock)):
            if s is not None and s in peer:
                sel.unregister(s)
                del peer[s]
                s.close()

    print(listener.getsockname()[1], flush=True)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is listener:
                try:
                    client, _ = listener.accept()
                except BlockingIOError:
                    continue
                upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    upstream.connect(target)
                except OSError:
                    client.close()
                    upstream.close()
                    continue
                # Small messages (RESP commands) go through at once.
                for s in (client, upstream):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer[client], peer[upstream] = upstream, client
                sel.register(client, selectors.EVENT_READ, None)
                sel.register(upstream, selectors.EVENT_READ, None)
                continue
            if sock not in peer:
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                close(sock)
                continue
            try:
                # Blocking send: the peer reads what it is sent (redis, a client), and a
                # stall here only delays this proxy, which is what a slow link does.
                peer[sock].sendall(data)
            except OSError:
                close(sock)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
