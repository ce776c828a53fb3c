"""Local stand-ins for external services, for development and tests.

Every keep-alive (HTTP/1.1) server here sets ``disable_nagle_algorithm``
(TCP_NODELAY): http.server sends a response's headers and its body in two
writes, and on a reused connection Nagle's algorithm holds the second until
the client's delayed ACK, 40 ms later, on every call.
"""
