"""URL forms the outbound rules must judge: shared by unit and API tests."""

from __future__ import annotations

# Every spelling of a local target a caller may try; all refused without DNS.
LOCAL_URLS = [
    "http://127.0.0.1/x", "http://127.1/x", "http://2130706433/x", "http://2852039166/x",
    "http://0x7f.1/x", "http://0x7f000001/x", "http://0177.0.0.1/x", "http://017700000001/x",
    "http://0/x", "http://10.1.2.3/x", "http://172.16.0.1/x", "http://192.168.1.1/x",
    "http://169.254.169.254/latest", "http://100.64.0.1/x", "http://224.0.0.1/x", "http://240.0.0.1/x",
    "http://[::1]/x", "http://[::]/x", "http://[::ffff:127.0.0.1]/x", "http://[::ffff:7f00:1]/x",
    "http://[::ffff:169.254.169.254]/x", "http://[::127.0.0.1]/x", "http://[64:ff9b::7f00:1]/x",
    "http://[2002:7f00:0001::1]/x", "http://[fc00::1]/x", "http://[fd12:3456::1]/x",
    "http://[fe80::1]/x", "http://[fe80::1%25eth0]/x", "http://[ff02::1]/x",
    "http://localhost/x", "http://LOCALHOST./x", "http://api.localhost/x", "http://metadata/x",
    "http://metadata./x", "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.GOOGLE.INTERNAL./x", "http://db.c.my-project.internal/x", "http://127.0.0.1.:8080/x",
]  # fmt: skip
PUBLIC_URLS = [
    "https://example.com/hook", "http://93.184.216.34/x", "http://[2606:4700:4700::1111]/x",
    "https://xn--bcher-kva.example/x", "https://bücher.example:8443/x", "http://8.8.8.8./x",
]  # fmt: skip
BAD_URLS = [
    "http://example.com:99999/x", "http://example.com:abc/x", "http://example.com:0/x",
    "http://exa%41mple.com/x", "http://a..b/x", "http://-bad-.example/x", "http://[::1/x", "http://[v1.fe]/x",
    "http://" + "a" * 64 + ".example/x", "ftp://example.com/x", "http:///x",
]  # fmt: skip
