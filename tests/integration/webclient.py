"""A small HTTP client for the web UI's tests (urllib/http.client only), on harness.py.

    c = WebClient(port, tls_ca=None)
    c.login("admin", "pw") -> status      c.get(path) / c.post(path, fields, files=None)
    c.csrf (after login), c.cookie        each returns (status, headers, body bytes); .json(...)
    web_config(wd, port, users=..., extra=...)  the `web:` section of a test configuration
    password_hash(binary, password)       `modbridge passwd`
"""
import http.client
import json
import ssl
import uuid


class WebClient:
    def __init__(self, port, host="127.0.0.1", tls_ca=None):
        self.host = host
        self.port = port
        self.tls_ca = tls_ca
        self.cookie = None
        self.csrf = None

    def _conn(self):
        if self.tls_ca:
            ctx = ssl.create_default_context(cafile=self.tls_ca)
            return http.client.HTTPSConnection(self.host, self.port, timeout=30, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, cookie=True):
        h = dict(headers or {})
        if cookie and self.cookie:
            h["Cookie"] = "mb_session=" + self.cookie
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=h)
            res = conn.getresponse()
            data = res.read()
            hdrs = {k.lower(): v for k, v in res.getheaders()}
            set_cookie = res.getheader("Set-Cookie")
            return res.status, hdrs, data, set_cookie
        finally:
            conn.close()

    def get(self, path, **kw):
        st, h, body, _ = self.request("GET", path, **kw)
        return st, h, body

    def post(self, path, fields=(), files=None, csrf=True, headers=None, **kw):
        h = dict(headers or {})
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        if files:
            body, ctype = multipart(fields, files)
        else:
            from urllib.parse import urlencode
            body, ctype = urlencode(list(fields)).encode(), "application/x-www-form-urlencoded"
        h.setdefault("Content-Type", ctype)
        st, hd, data, _ = self.request("POST", path, body=body, headers=h, **kw)
        return st, hd, data

    def json(self, method, path, fields=(), files=None, **kw):
        if method == "GET":
            st, _, body = self.get(path, **kw)
        else:
            st, _, body = self.post(path, fields, files, **kw)
        try:
            return st, json.loads(body or b"{}")
        except ValueError as exc:
            raise AssertionError(f"{method} {path}: {st} not JSON: {body[:300]!r}") from exc

    def login(self, user, password, planted=None):
        """POST /login as the form does; keeps the new session cookie and its CSRF token."""
        from urllib.parse import urlencode
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        if planted:
            h["Cookie"] = "mb_session=" + planted
        st, hdrs, _, set_cookie = self.request(
            "POST", "/login", urlencode({"user": user, "password": password}).encode(), h,
            cookie=False)
        if st == 303 and set_cookie and "mb_session=" in set_cookie:
            self.cookie = set_cookie.split("mb_session=")[1].split(";")[0]
            _, sess = self.json("GET", "/api/session")
            self.csrf = sess["csrf"]
        return st, hdrs, set_cookie


def multipart(fields, files):
    """files: [(field, filename, bytes)]"""
    b = "----mbtest" + uuid.uuid4().hex
    out = []
    for k, v in fields:
        out.append(f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for field, name, data in files:
        out.append(f'--{b}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                   f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n")
    out.append(f"--{b}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={b}"


def password_hash(binary, password):
    """`modbridge passwd` with the password on stdin."""
    import subprocess
    res = subprocess.run([binary, "passwd"], input=password + "\n", capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 0 and res.stdout.startswith("$y$"), \
        f"modbridge passwd failed ({res.returncode}): {res.stdout}{res.stderr}"
    return res.stdout.strip()


def web_config(port, users, extra=""):
    lines = ["web:", "  enabled: true", f"  listen: 127.0.0.1:{port}", "  users:"]
    for name, h in users:
        lines += [f"    - name: {name}", f'      password_hash: "{h}"']
    return "\n".join(lines) + "\n" + extra
