"""Talking to a Ray cluster's Jobs API: its address, its token, and its errors as one sentence each.

Ray 2.60 clusters authenticate Jobs API requests with a bearer token by default. ecgsearch looks for
the token where Ray itself does (``$RAY_AUTH_TOKEN``, the file named by ``$RAY_AUTH_TOKEN_PATH``, then
``~/.ray/auth_token``) and sends it in the ``Authorization`` header, whatever ``RAY_AUTH_MODE`` says on
this machine. The token is never printed, logged, stored in the job or put in an error message: only
where it came from is ever named.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ecgsearch.errors import UserError

TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
ADDRESS_ENVS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
_NOT_FOUND = re.compile(r"status code 404|does not exist", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    """A token and where it was found (``source`` is safe to show; ``value`` never is)."""

    value: str
    source: str

    def __repr__(self) -> str:  # keep the value out of tracebacks and debug logs
        return f"Token(source={self.source!r})"


def find_token() -> Token | None:
    """The cluster token from the environment or the token file, as Ray's own clients find it."""
    value = os.environ.get(TOKEN_ENV, "").strip()
    if value:
        return Token(value, f"${TOKEN_ENV}")
    path_env = os.environ.get(TOKEN_PATH_ENV)
    candidates = [(Path(path_env).expanduser(), f"${TOKEN_PATH_ENV} ({path_env})")] if path_env else []
    candidates.append((Path.home() / ".ray" / "auth_token", "~/.ray/auth_token"))
    for path, source in candidates:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return Token(value, source)
    return None


def dashboard_address(address: str | None) -> str:
    """``--address``, else ``$RAY_API_SERVER_ADDRESS`` or an http(s) ``$RAY_ADDRESS``: the dashboard URL."""
    if not address:
        address = next((os.environ[e] for e in ADDRESS_ENVS if os.environ.get(e, "").startswith("http")), None)
    if not address:
        raise UserError("no cluster address: pass --address http://HEAD:8265 (the Ray dashboard of the head "
                        "node) or set RAY_API_SERVER_ADDRESS.")
    if not re.match(r"^https?://[^/\s]+", address):
        raise UserError(f"--address {address!r}: not a dashboard URL; use http://HEAD:8265 (the Ray dashboard's "
                        "address, not the GCS address HEAD:6379).")
    return address.rstrip("/")


@contextlib.contextmanager
def translated(address: str, token: Token | None, job_id: str | None = None) -> Iterator[None]:
    """Turn the Jobs SDK's errors into one sentence each (the token's value never appears)."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as error:
        if token is None or "required" in str(error).lower():
            raise UserError(f"{address}: the Ray cluster requires an authentication token and none was found; "
                            f"set {TOKEN_ENV} to the cluster's token (`ray get-auth-token` on the head node prints "
                            "it) or save it in ~/.ray/auth_token.") from None
        raise UserError(f"{address}: the Ray cluster refused the authentication token from {token.source}; "
                        f"use the cluster's own token (`ray get-auth-token` on the head node prints it).") from None
    except ConnectionError:
        raise UserError(f"{address}: cannot reach a Ray dashboard there; check that the cluster is up and that "
                        "this is the dashboard's address (http://HEAD:8265).") from None
    except RuntimeError as error:
        if job_id is not None and _NOT_FOUND.search(str(error)):
            raise UserError(f"{address}: there is no job '{job_id}' on this cluster; `ray job list "
                            f"--address {address}` lists the jobs.") from None
        raise UserError(f"{address}: the Jobs API answered: {_one_line(str(error))}") from None


def connect(address: str | None) -> tuple[Any, str, Token | None]:
    """A ``JobSubmissionClient`` for the dashboard at ``address`` with the token, if any, attached."""
    from ray.job_submission import JobSubmissionClient

    address = dashboard_address(address)
    token = find_token()
    headers = {"Authorization": f"Bearer {token.value}"} if token else None
    with translated(address, token):
        client = JobSubmissionClient(address, headers=headers)
    return client, address, token


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
