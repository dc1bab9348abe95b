"""Async client for any OpenAI-compatible chat server, with a response cache, bounded concurrency and retries.

    async with LLMClient(llm_params) as client:          # UserError first if $llm.api_key_env is unset
        answer = await client.complete(messages)         # Answer(text, model, finish_reason, tokens_in, tokens_out)
    client.stats                                         # requests, cache_hits, retries, failures, tokens ...

- Cache: diskcache (JSON, no eviction) under `llm.cache_dir`, keyed by the sha256 of the canonical request (model,
  messages, temperature, seed, max_tokens; never the key nor the URL: another server with the same model reuses
  the answers). Each answer is stored as it arrives, so an interrupted run loses at most the requests in flight;
  every well-formed answer is cached, even one the caller rejects: a rerun replays the re-ask chain, zero requests.
- Retries (our loop, the SDK's off, so each is counted) on 408, 409, 429, 5xx, timeouts, connection errors and
  malformed responses, up to `llm.max_retries`: backoff with jitter (BACKOFF_BASE_S doubling to BACKOFF_CAP_S) or
  Retry-After on 429/503 (<= RETRY_AFTER_CAP_S). 401/403/404 stop the run (UserError); other 4xx fail the request.
- Pacing: `llm.requests_per_minute` / `llm.tokens_per_minute` space request starts evenly, retries too (pacing.py).
- An answer naming another model is accepted (servers alias names; OpenAI's dated snapshots, gpt-4o-mini-2024-07-18,
  are not counted): counted in `model_mismatches`, warned once; records keep the requested name (params, cache key).
- The key only travels in the Authorization header; every message we raise has it replaced by '***'.
"""
from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import random
import sys
import time
from dataclasses import asdict, dataclass

from pipeline.config.library_params import LLMParams
from pipeline.core.errors import UserError
from pipeline.library.answer_cache import Answer, open_cache, request_key
from pipeline.library.pacing import Pacer, request_tokens

BACKOFF_BASE_S = 0.5
"""First retry delay; doubles per retry (with jitter in [0.5, 1]x)."""
BACKOFF_CAP_S = 8.0
"""Longest backoff delay between two attempts."""
RETRY_AFTER_CAP_S = 120.0
"""Longest Retry-After we honour."""
RETRY_STATUS = (408, 409, 429)
FATAL_STATUS = {401: "the server rejected the API key", 403: "the API key may not use this model or endpoint",
                404: "the model or endpoint does not exist on this server"}


class RequestFailed(Exception):
    """A request still failed after every retry (or got a non-retryable 4xx); the caller falls back.

    `cause` names the last error's kind for the summary: `HTTP <status>`, `timeout`, `connection error` or
    `malformed response` (a 2xx that is not a chat completion, e.g. an HTML page from a wrong llm.base_url).
    """

    def __init__(self, message: str, cause: str):
        super().__init__(message)
        self.cause = cause


class MalformedResponse(Exception):
    """The server answered 2xx with something that is not a chat completion."""


@dataclass
class LLMStats:
    """What the client did during one run."""

    requests: int = 0  # sent to the server, retries included
    cache_hits: int = 0  # answered from the cache or by an identical request in flight
    retries: int = 0  # attempts after a retryable error
    failures: int = 0  # requests that failed after every retry
    tokens_in: int = 0  # prompt tokens the server reported for this run's requests
    tokens_out: int = 0  # completion tokens likewise
    model_mismatches: int = 0  # answers naming another model than llm.model


def read_api_key(llm: LLMParams) -> str:
    """The API key from the environment variable named by llm.api_key_env.

    UserError, before any request and without showing the key, when it is unset or empty, or when it could not be
    sent in an HTTP header: whitespace anywhere (a trailing newline from `$(cat key.txt)`) or a non-ASCII character.
    """
    key = os.environ.get(llm.api_key_env, "")
    if not key.strip():
        raise UserError(f"llm: environment variable {llm.api_key_env} (llm.api_key_env) is not set; export your API "
                        f"key in it, e.g. `export {llm.api_key_env}=...`. Local servers (vLLM, Ollama, llama.cpp) "
                        f"accept any value, e.g. `export {llm.api_key_env}=EMPTY`.")
    unsendable = [what for what, bad in (("whitespace or a line break", any(ch.isspace() for ch in key)),
                                         ("a non-ASCII character", not key.isascii())) if bad]
    if unsendable:
        raise UserError(f"llm: the API key in ${llm.api_key_env} contains {' and '.join(unsendable)} (at position "
                        f"{next(k for k, ch in enumerate(key) if ch.isspace() or not ch.isascii()) + 1} of "
                        f"{len(key)}), so it cannot be sent in an HTTP header; export it again without it, e.g. "
                        f"`export {llm.api_key_env}=\"$(tr -d '[:space:]' < key.txt)\"`.")
    return key


class LLMClient:
    """Async chat-completion client; use `async with LLMClient(llm) as client`."""

    def __init__(self, llm: LLMParams, backoff_base_s: float | None = None, backoff_cap_s: float | None = None):
        self.llm = llm
        self.stats = LLMStats()
        self._api_key = read_api_key(llm)
        self._backoff_base_s = BACKOFF_BASE_S if backoff_base_s is None else backoff_base_s
        self._backoff_cap_s = BACKOFF_CAP_S if backoff_cap_s is None else backoff_cap_s
        self._pending: dict[str, asyncio.Task] = {}
        self.pacer = Pacer(llm.requests_per_minute, llm.tokens_per_minute)
        self._client = self._cache = self._semaphore = None

    async def __aenter__(self) -> "LLMClient":
        import openai

        self._semaphore = asyncio.Semaphore(self.llm.concurrency)
        self._cache = open_cache(self.llm.cache_dir)
        self._client = openai.AsyncOpenAI(base_url=self.llm.base_url, api_key=self._api_key, max_retries=0,
                                          timeout=self.llm.timeout_s)
        return self

    async def __aexit__(self, *exc) -> None:
        pending = list(self._pending.values())  # left over only when the run is aborted
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.close()
        self._cache.close()

    def redact(self, text: str) -> str:
        """`text` with the API key replaced by '***'."""
        return text.replace(self._api_key, "***") if len(self._api_key) >= 4 else text

    async def complete(self, messages: list[dict]) -> Answer:
        """The answer to `messages`: from the cache, from an identical request in flight, or from the server."""
        key = request_key(self.llm, messages)
        cached = self._cache.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return self._accept(Answer(**cached))
        if key in self._pending:
            self.stats.cache_hits += 1
            return self._accept(await asyncio.shield(self._pending[key]))
        task = asyncio.ensure_future(self._fetch_and_store(key, messages))
        self._pending[key] = task
        task.add_done_callback(functools.partial(self._forget, key))
        return self._accept(await asyncio.shield(task))

    async def ask_server(self, messages: list[dict]) -> Answer:
        """The server's own answer to `messages`, neither read from nor written to the cache (`mdpr llm-check`)."""
        return self._accept(await self._fetch(messages))

    def _forget(self, key: str, task: asyncio.Task) -> None:
        """Done callback: drop the finished request from the in-flight table; mark its error as seen."""
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()

    def _accept(self, answer: Answer) -> Answer:
        requested = self.llm.model
        if answer.model != requested and not answer.model.startswith(requested + "-"):
            if not self.stats.model_mismatches:
                print(f"warning: llm: the server answered with model {answer.model!r} for llm.model {requested!r}; "
                      f"accepted (servers may alias names); records keep {requested!r}.", file=sys.stderr)
            self.stats.model_mismatches += 1
        return answer

    async def _fetch_and_store(self, key: str, messages: list[dict]) -> Answer:
        answer = await self._fetch(messages)
        self._cache.set(key, asdict(answer))  # synchronous on the loop thread: one small SQLite commit
        return answer

    async def _fetch(self, messages: list[dict]) -> Answer:
        """Send one request, retrying retryable errors; RequestFailed when retries run out."""
        import openai

        error, cause, cost = "no attempt", "no attempt", request_tokens(messages, self.llm.max_tokens)
        for attempt in range(self.llm.max_retries + 1):
            try:
                async with self._semaphore:
                    await self.pacer.wait(cost)
                    self.stats.requests += 1
                    response = await self._client.chat.completions.create(
                        model=self.llm.model, messages=messages, temperature=self.llm.temperature,
                        seed=self.llm.seed, max_tokens=self.llm.max_tokens)
                answer = _parse_completion(response)
                self.pacer.charge(answer.tokens_in + answer.tokens_out - cost)
                self.stats.tokens_in += answer.tokens_in
                self.stats.tokens_out += answer.tokens_out
                return answer
            except openai.APIStatusError as err:
                status = err.status_code
                if status in FATAL_STATUS:
                    raise UserError(self.redact(
                        f"llm: {FATAL_STATUS[status]} (HTTP {status} from {self.llm.base_url or 'api.openai.com'}, "
                        f"model {self.llm.model!r}); check llm.model, llm.base_url and "
                        f"${self.llm.api_key_env}.")) from None
                error, cause = f"HTTP {status}: {_short(err.message)}", f"HTTP {status}"
                if status not in RETRY_STATUS and status < 500:
                    break
                delay = _retry_after(err.response.headers) if status in (429, 503) else None
            except openai.APITimeoutError:
                error, cause, delay = f"no answer within llm.timeout_s = {self.llm.timeout_s} s", "timeout", None
            except openai.APIConnectionError as err:
                error = f"connection error ({_short(str(err.__cause__ or err))})"
                cause, delay = "connection error", None
            except (MalformedResponse, ValueError) as err:
                error, cause, delay = f"malformed response ({_short(str(err))})", "malformed response", None
            if attempt < self.llm.max_retries:
                self.stats.retries += 1
                await asyncio.sleep(delay if delay is not None else self._backoff(attempt))
        self.stats.failures += 1
        raise RequestFailed(self.redact(error), cause)

    def _backoff(self, attempt: int) -> float:
        return min(self._backoff_cap_s, self._backoff_base_s * 2 ** attempt) * random.uniform(0.5, 1.0)


def _parse_completion(response) -> Answer:
    """An Answer from a ChatCompletion; MalformedResponse when fields are missing or of the wrong type."""
    try:
        choice = response.choices[0]
        text = choice.message.content
        usage = getattr(response, "usage", None)
        answer = Answer(text=text, model=str(response.model), finish_reason=choice.finish_reason,
                        tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
                        tokens_out=int(getattr(usage, "completion_tokens", 0) or 0))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        raise MalformedResponse(f"not a chat completion: {type(err).__name__}") from None
    if text is not None and not isinstance(text, str):
        raise MalformedResponse("message content is not a string")
    return answer


def _retry_after(headers) -> float | None:
    """Seconds the server asks us to wait (Retry-After seconds or HTTP date, or retry-after-ms), capped."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)
    return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
