"""The wire of 蓝莺IM's server API as the target uses it (research/targets.md §D; maxim-top/im.gitbook
`zh-hans/reference/server-api/*.md` and its Swagger spec `swagger/api-docs.json`).

Every call goes to `{api_endpoint}/{URI}` with the headers `app_id` and `access-token` (the admin
token), JSON bodies, and optionally `user_id` / `group_id` to act as that user or as that group's
admin. Answers are HTTP 200 with `{code, message, data}`: `code` 200 is success, anything else a
business error (error codes in `quick-start/server-api-quick-start.md`, 附录 错误码说明).

What is retried: connection errors, HTTP 429 and 5xx, and code 20000 (服务器数据库异常), with
exponential backoff for up to the target's `--retry-for`; while errors last the pace slows down and
recovers as calls succeed. A refused or expired token (HTTP 401/403, codes 10003, 10008, 40000 for an
unknown app) stops the run with what to do. The token never appears in a message: it is a remembered
secret (redact.remember) and every error text goes through redact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import IO, Any

import requests

from chatmigrate.errors import TransientError, UsageError
from chatmigrate.redact import redact

# Business codes (server-api-quick-start.md 错误码说明).
CODE_OK = 200
USER_NOT_FOUND = 10000
BAD_PARAMETERS = 10002
TOKEN_MISSING = 10003
USER_EXISTS = 10004
TOKEN_INVALID = 10008
SERVER_DATABASE = 20000
GROUP_NOT_FOUND = 20001
NOT_A_MEMBER = 20002
ALREADY_MEMBER = 20017
APP_NOT_FOUND = 40000
_TOKEN_CODES = {TOKEN_MISSING, TOKEN_INVALID, APP_NOT_FOUND}
_RETRY_CODES = {SERVER_DATABASE}
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class LanyingError(Exception):
    """A business error the server answered (HTTP 200, `code` other than 200): not worth retrying."""

    def __init__(self, route: str, code: int | None, message: str) -> None:
        super().__init__(f"{route}: 蓝莺IM answered code {code}: {message}")
        self.route, self.code, self.message = route, code, message


class Pacer:
    """At most `rate` calls a second (0: unpaced), slowed down while errors last.

    No rate limit is documented, so the admin chooses one (`?rate=N`); after an error the interval
    doubles (up to 16 times), and each success takes a tenth of the slow-down back."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.factor = 1.0
        self._clock, self._sleep = clock, sleep
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval * self.factor

    def failed(self) -> None:
        self.factor = min(self.factor * 2.0, 16.0)

    def succeeded(self) -> None:
        if self.factor > 1.0:
            self.factor = max(1.0, self.factor * 0.9)


class LanyingClient:
    """One session against one app: JSON calls with the admin token, retries, pacing and counts."""

    def __init__(self, base_url: str, app_id: str, token: str, *, rate: float = 0.0, retry_seconds: float = 60.0,
                 timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 notify: Callable[[str], None] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"app_id": app_id, "access-token": token, "Accept": "application/json",
                                     "User-Agent": "chatmigrate"})
        self.pacer = Pacer(rate, sleep=sleep)
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self._sleep = sleep
        self.notify = notify
        self.calls = 0
        self.retries = 0

    def call(self, method: str, route: str, *, body: Any = None, params: Mapping[str, Any] | None = None,
             as_user: int | None = None, as_group: int | None = None, paced: bool = False) -> dict[str, Any]:
        """The whole answer (`{code, message, data, …}`) of a successful call; LanyingError for a
        business error, UsageError for a refused token, TransientError when retries ran out."""
        headers = {}
        if as_user is not None:
            headers["user_id"] = str(as_user)
        if as_group is not None:
            headers["group_id"] = str(as_group)
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.5
        while True:
            if paced:
                self.pacer.wait()
            self.calls += 1
            problem = self._attempt(method, route, body, params, headers)
            if isinstance(problem, dict):
                self.pacer.succeeded()
                return problem
            self.pacer.failed()
            if time.monotonic() + delay > deadline:
                raise TransientError(redact(f"{method} {self.base_url}{route}: {problem}; gave up after "
                                            f"{self.retry_seconds:.0f}s of retries (a re-run continues where this "
                                            "one stopped)"))
            if self.notify is not None and self.retries == 0:
                self.notify(redact(f"蓝莺IM {route}: {problem}; retrying with backoff"))
            self.retries += 1
            self._sleep(delay)
            delay = min(delay * 2.0, 30.0)

    def data(self, method: str, route: str, **kwargs: Any) -> Any:
        return self.call(method, route, **kwargs).get("data")

    def _attempt(self, method: str, route: str, body: Any, params: Mapping[str, Any] | None,
                 headers: dict[str, str]) -> dict[str, Any] | str:
        """The answer, or the text of a failure worth retrying."""
        try:
            response = self.session.request(method, self.base_url + route, json=body, params=params,
                                            headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}"
        if response.status_code in (401, 403):
            raise UsageError(f"{method} {route}: HTTP {response.status_code}: 蓝莺IM refused the admin token; create "
                             "one in the console (Token管理) and set it in the environment variable the URL names "
                             "(token_env, default CHATMIGRATE_LANYING_TOKEN)")
        if response.status_code in _RETRY_STATUSES:
            return f"HTTP {response.status_code}"
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict):
            raise UsageError(redact(f"{method} {self.base_url}{route}: HTTP {response.status_code}, not a 蓝莺IM "
                                    "answer; is the API endpoint right (the console's 应用信息 page)?"))
        code = answer.get("code")
        if code == CODE_OK:
            return answer
        message = str(answer.get("message") or "")[:300]
        if code in _TOKEN_CODES:
            raise UsageError(redact(f"{route}: 蓝莺IM answered code {code} ({message}): the app_id or the admin "
                                    "token is not valid (expired?); create a token in the console (Token管理) and "
                                    "set it in the environment variable the URL names (token_env, default "
                                    "CHATMIGRATE_LANYING_TOKEN)"))
        if code in _RETRY_CODES:
            return f"code {code} ({message})"
        raise LanyingError(route, code if isinstance(code, int) else None, redact(message))

    def upload(self, ticket: Mapping[str, Any], name: str, handle: IO[bytes], mime: str) -> None:
        """Put a file's bytes where `GET /file/upload/chat` said: a POST form with its `oss_body_param`
        (as the 蓝莺IM SDKs and lanying-connector do) or a PUT of the bytes. The storage host is not the
        API: the admin token is not sent there."""
        url = str(ticket.get("upload_url") or "")
        if not url.startswith(("http://", "https://")):
            raise LanyingError("/file/upload/chat", None, "the answer names no upload_url")
        method = str(ticket.get("upload_method") or "POST").upper()
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.5
        while True:
            self.pacer.wait()
            handle.seek(0)
            failure = ""
            try:
                if method == "PUT":
                    response = requests.put(url, data=handle, headers={"Content-Type": mime}, timeout=self.timeout)
                else:
                    fields = {str(k): str(v) for k, v in (ticket.get("oss_body_param") or {}).items()}
                    response = requests.post(url, data=fields, files={"file": (name, handle, mime)},
                                             timeout=self.timeout)
                status = response.status_code
            except requests.RequestException as exc:
                status, response = 0, None
                failure = type(exc).__name__
            if response is not None and status < 300:
                return
            if status and status not in _RETRY_STATUSES:
                raise LanyingError("file upload", status, f"the storage refused the upload (HTTP {status})")
            failure = failure or f"HTTP {status}"
            if time.monotonic() + delay > deadline:
                raise TransientError(redact(f"upload of {name!r}: {failure}; gave up after retries"))
            self.retries += 1
            self._sleep(delay)
            delay = min(delay * 2.0, 30.0)

    def close(self) -> None:
        self.session.close()
