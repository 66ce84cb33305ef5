"""`mfcli emt MODEL DATA... --endpoint URL`: EMT's questions asked of a model behind an OpenAI-compatible
server — vLLM, SGLang, llama.cpp's server, `transformers serve`, a hosted API — instead of weights loaded
into this process.

The same records as the local path: each record's prompt as `models/chat.py` puts it in the user turn (the
image first, then the text, `<image>` dropped), the image as a data URL of the pixels the local path reads
(`io/images.load_rgb`, re-encoded as lossless PNG unless --image-format says jpeg), greedy decoding
(temperature 0 and a fixed seed, which servers that sample take), and `max_tokens` = the record kind's cap.
The rows written are the local path's `PredRecord`s, so `judge`, `report`, `merge-preds` and `--judge`
inline read them unchanged; each row is its own "batch" of one (its `batch` is the record's position in
this job, `batch_seconds` the request's latency).

Robustness, as the local path's: N requests in flight, rows written in record order as the prefix before
them completes and flushed, so a kill loses at most the requests in flight; the openai client retries 429,
5xx, timeouts and dropped connections with exponential backoff; a request that still fails is written as a
failure with its reason (`error`, `request_failed`) — never as an empty answer a judge would score — and the
same command asks only those again. One probe request goes first, so a wrong key, a model the server does
not serve or a server that refuses images stops the run with one line before anything is written.

The API key comes from an environment variable (OPENAI_API_KEY unless --endpoint-key-env names another) and
never reaches a file, the sidecar, a log line or an error message: text from the server is redacted.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mfcli import __version__
from mfcli.errors import MfcliError, UsageError
from mfcli.eval.predictions import complete_batches, generation_caps, prepare_output, update_meta
from mfcli.io.images import load_rgb
from mfcli.io.jsonl import dumps, write_jsonl_atomic
from mfcli.io.records import PredRecord
from mfcli.kinds import kind_of
from mfcli.models.chat import user_messages
from mfcli.params import option

IMAGE_FORMATS = ("png", "jpeg")
JPEG_QUALITY = 95
SEED = 0  # sent with every request: servers that sample at temperature 0 anyway (some hosted APIs) repeat
# how many records in a row may fail (each after its retries) before the run stops asking: a server that
# went away would otherwise cost every remaining record its full backoff
STOP_AFTER_FAILURES_IN_A_ROW = 16


@dataclass(frozen=True)
class EndpointOptions:
    """`mfcli emt --endpoint`'s options; a field made with `option` is its --flag, with this help."""

    url: str | None = option(None, "Ask the model served at this OpenAI-compatible URL (ending in /v1) "
                                   "instead of loading MODEL; MODEL is then the name the server serves.",
                             flags=("--endpoint",))
    key_env: str = option("OPENAI_API_KEY", "Environment variable holding the endpoint's API key (read there "
                                            "only; unset: no key is sent).", flags=("--endpoint-key-env",))
    in_flight: int = option(8, "Requests in flight at once (the server batches them).", flags=("--in-flight",))
    timeout: float = option(120.0, "Seconds before one request is given up (then retried).",
                            flags=("--request-timeout",))
    retries: int = option(4, "Retries per request on 429, 5xx, timeouts and dropped connections (exponential "
                             "backoff).", flags=("--request-retries",))
    image_format: str = option("png", "How the image is sent: png (lossless: the local path's pixels) or jpeg "
                                      f"(quality {JPEG_QUALITY}, smaller).", flags=("--image-format",))

    def __post_init__(self):
        if self.in_flight < 1 or self.retries < 0 or self.timeout <= 0:
            raise UsageError("--in-flight must be at least 1, --request-retries at least 0 and "
                             "--request-timeout positive.")
        if self.image_format not in IMAGE_FORMATS:
            raise UsageError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got '{self.image_format}'.")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise UsageError(f"--endpoint must be an http(s) URL such as http://localhost:8000/v1, got '{self.url}'.")


def public_url(url: str) -> str:
    """The URL as recorded: without user:password@ and without a query (either may carry a secret)."""
    parts = urlsplit(url.rstrip("/"))
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def image_data_url(path: Path | None, image_format: str = "png") -> str | None:
    """The image as the local path reads it (RGB), as a base64 data URL; None for a record without one."""
    if path is None:
        return None
    buf = io.BytesIO()
    img = load_rgb(path)
    if image_format == "jpeg":
        img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        img.save(buf, format="PNG")
    return f"data:image/{image_format};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def chat_messages(prompt: str, image_url: str | None) -> list[dict]:
    """The local path's user turn (models/chat.user_messages) with the image as an `image_url` part; no
    `image_url`: the question is asked without an image (the `text` kind)."""
    turn = user_messages(prompt, image=image_url is not None)[0]
    content = [{"type": "image_url", "image_url": {"url": image_url}} if part["type"] == "image" else part
               for part in turn["content"]]
    return [{"role": turn["role"], "content": content}]


@dataclass
class Answer:
    output: str | None
    error: str | None = None
    request_failed: bool = False  # the server failed to answer (asked again on resume), not the record
    seconds: float = 0.0


@dataclass
class Endpoint:
    """One OpenAI-compatible server: its URL, the key from the environment, the client settings."""

    opts: EndpointOptions
    key: str | None = field(init=False, repr=False)

    def __post_init__(self):
        self.key = os.environ.get(self.opts.key_env) or None

    @property
    def url(self) -> str:
        return self.opts.url.rstrip("/")

    def redact(self, text: str) -> str:
        text = " ".join(str(text).split())
        if self.key:
            text = text.replace(self.key, "***")
        return text[:300]

    def _client_args(self) -> dict:
        # a placeholder where no key is set: the client insists on one; local servers ignore it
        return dict(api_key=self.key or "no-key", base_url=self.url, timeout=self.opts.timeout,
                    max_retries=self.opts.retries)

    def refusal(self, e: Exception, doing: str) -> MfcliError:
        """One line for a request that failed for good: what the server said (key redacted), what to do."""
        import openai

        where = public_url(self.url)
        if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
            sent = (f"the key in ${self.opts.key_env} was refused" if self.key
                    else f"no key was sent (${self.opts.key_env} is not set)")
            return MfcliError(f"the server at {where} refused {doing} (HTTP {e.status_code}): {sent}.",
                              f"Export {self.opts.key_env}, or name the variable that holds the key with "
                              "--endpoint-key-env.")
        if isinstance(e, openai.APIStatusError):
            return MfcliError(f"the server at {where} refused {doing} (HTTP {e.status_code}: "
                              f"{self.redact(_server_message(e))}).",
                              "If MODEL takes no images, serve a vision-capable model whose chat template accepts "
                              "images; see docs/formats.md (Evaluating a served model).")
        if isinstance(e, openai.APITimeoutError):
            return MfcliError(f"the server at {where} did not answer {doing} within {self.opts.timeout:g} s "
                              f"({self.opts.retries + 1} tries).",
                              "Raise --request-timeout, or check that the server is not overloaded.")
        if isinstance(e, openai.APIConnectionError):
            return MfcliError(f"could not reach {where} ({self.redact(_cause(e))}).",
                              "Check --endpoint (it usually ends in /v1) and that the server is running.")
        return MfcliError(f"{doing} at {where} failed: {type(e).__name__}: {self.redact(str(e))}.")

    def served_models(self) -> list[str] | None:
        """The ids of /v1/models; None where the server has no such route (it is then not checked)."""
        import openai

        client = openai.OpenAI(**self._client_args())
        try:
            return [m.id for m in client.models.list()]
        except openai.NotFoundError:
            return None
        except openai.APIError as e:
            raise self.refusal(e, "the model list (GET /models)") from None
        finally:
            client.close()

    def check_serves(self, model: str) -> str | None:
        """The served model id (as /v1/models lists it) for MODEL, or one line naming what is served."""
        served = self.served_models()
        if served is None:
            return None
        if model not in served:
            shown = ", ".join(served[:20]) + (f" and {len(served) - 20} more" if len(served) > 20 else "")
            raise MfcliError(f"the server at {public_url(self.url)} does not serve '{model}'; it serves: "
                             f"{shown or 'nothing'}.", "Pass one of those as MODEL.")
        return model

    async def ask(self, client, model: str, prompt: str, image_url: str | None, max_tokens: int) -> str:
        resp = await client.chat.completions.create(model=model, messages=chat_messages(prompt, image_url),
                                                    temperature=0, max_tokens=max_tokens, seed=SEED)
        # stripped as the local path strips its decoded answers (a server keeps the leading space)
        return (resp.choices[0].message.content or "").strip()


def _server_message(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return str(msg)
    return str(getattr(e, "message", e))


def _cause(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def settings_for(model: str, endpoint: Endpoint, served: str | None, files: list[dict], shard: str | None,
                 n: int, max_new_tokens: int | None) -> dict:
    """What makes the outputs what they are: a resume needs every one equal. Not the URL (a restarted
    server may listen elsewhere; the served model's name is checked), the concurrency, the timeout or
    the retries (they change when answers arrive, not what they say); never the key."""
    return {"model": model, "served_model": served, "kind": "endpoint",
            "data": files, "shard": shard, "n_records": n,
            "generation": {"do_sample": False, "temperature": 0, "seed": SEED,
                           "max_new_tokens": max_new_tokens or generation_caps(),
                           "image_format": endpoint.opts.image_format}}


@dataclass
class EndpointRun:
    """What one `emt --endpoint` run did, for the command's closing line."""

    out: Path
    records: int
    asked: int
    failed: int
    seconds: float
    first_failure: str | None = None

    @property
    def rate(self) -> float:
        return self.asked / self.seconds if self.seconds > 0 else 0.0


class _InOrder:
    """Writes each job position's line once every earlier position's is written, flushing each time, so
    the file always holds a prefix of the job (less what a resume already had)."""

    def __init__(self, f, positions: list[int]):
        self.f, self.order, self.next, self.pending = f, positions, 0, {}

    def put(self, position: int, line: str) -> None:
        self.pending[position] = line
        written = []
        while self.next < len(self.order) and self.order[self.next] in self.pending:
            written.append(self.pending.pop(self.order[self.next]))
            self.next += 1
        if written:
            self.f.write("".join(written))
            self.f.flush()


def run_endpoint(model: str, queries: list, files: list[dict], out: Path, opts, endpoint_opts: EndpointOptions,
                 progress: bool = False) -> EndpointRun:
    """Ask every query of this job (emt's `Query`s, already sharded) of the served MODEL into OUT."""
    endpoint = Endpoint(endpoint_opts)
    served = endpoint.check_serves(model)
    settings = settings_for(model, endpoint, served, files, opts.shard, len(queries), opts.max_new_tokens)
    cap = {q.record.id: opts.max_new_tokens or kind_of(q.record.kind).max_new_tokens for q in queries}

    probe = _probe(endpoint, model, queries, cap, endpoint_opts.image_format)  # before anything is written
    sizes = {position: 1 for position in range(len(queries))}
    done = prepare_output(out, settings, sizes, resume=opts.resume, overwrite=opts.overwrite,
                          redo=lambda row: bool(row.get("request_failed")))
    # the sidecar names the server this run (last) asked: its URL without credentials, never the key
    update_meta(out, endpoint={"url": public_url(endpoint.url), "key_env": endpoint_opts.key_env,
                               "key_sent": endpoint.key is not None})
    todo = [(position, q) for position, q in enumerate(queries) if q.record.id not in done]

    def row(position: int, q, answer: Answer) -> str:
        r = q.record
        rec = PredRecord(model, r.id, q.index, r.task, r.kind, r.label, r.labels, r.prompt, r.image, r.references,
                         answer.output, position, 1, round(answer.seconds, 4), answer.error).to_json()
        if answer.request_failed:
            rec["request_failed"] = True
        return dumps(rec) + "\n"

    failures: list[str] = []
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    with open(out, "a", encoding="utf-8") as f, tqdm(total=len(queries), initial=len(queries) - len(todo),
                                                       desc="emt", unit="req", disable=not progress,
                                                       leave=False) as bar:
        writer = _InOrder(f, [position for position, _ in todo])

        def finished(position: int, q, answer: Answer) -> None:
            if answer.request_failed:
                failures.append(answer.error)
            writer.put(position, row(position, q, answer))
            bar.update(1)

        asked = asyncio.run(_ask_all(endpoint, model, todo, cap, endpoint_opts, probe, finished))
    seconds = time.perf_counter() - t0

    rows = complete_batches(out, sizes)
    if [r["batch"] for r in rows] != sorted(r["batch"] for r in rows):  # a resume appended re-asked records
        write_jsonl_atomic(out, sorted(rows, key=lambda r: r["batch"]))
    # unanswered: failed requests, and records never asked (the run stopped after failures in a row)
    unanswered = sum(1 for r in rows if r.get("request_failed")) + len(queries) - len(rows)
    update_meta(out, complete=unanswered == 0, mfcli_version=__version__)
    return EndpointRun(out, len(queries), asked, unanswered, seconds, failures[0] if failures else None)


@dataclass
class _Probe:
    query_id: str | None
    answer: Answer | None


def _probe(endpoint: Endpoint, model: str, queries: list, cap: dict, image_format: str) -> _Probe:
    """Ask the first record whose image opens, synchronously: a refused key, an unknown model or a server
    that takes no images stops the run here, with one line, before any file is touched. Its answer is
    kept for that record (asked once)."""
    import openai

    for q in queries[:8]:
        try:
            url = image_data_url(q.image_path, image_format)
        except Exception:
            continue  # an unreadable image is that record's error, not the server's
        t0 = time.perf_counter()

        async def once():
            async with openai.AsyncOpenAI(**endpoint._client_args()) as client:
                return await endpoint.ask(client, model, q.record.prompt, url, cap[q.record.id])

        try:
            text = asyncio.run(once())
        except openai.APIError as e:
            raise endpoint.refusal(e, f"EMT's request for record '{q.record.id}'") from None
        return _Probe(q.record.id, Answer(text, seconds=time.perf_counter() - t0))
    return _Probe(None, None)


async def _ask_all(endpoint: Endpoint, model: str, todo: list, cap: dict, eopts: EndpointOptions, probe: _Probe,
                   finished) -> int:
    """Every (position, query) of `todo`, at most `in_flight` at once; `finished` is called per record (in
    completion order; the writer restores record order). Returns the number of requests sent."""
    import openai

    sem = asyncio.Semaphore(eopts.in_flight)
    state = {"in_a_row": 0, "stopped": False, "asked": 0}

    async def one(client, position: int, q) -> None:
        async with sem:
            if state["stopped"]:
                return  # not written: the next run asks it
            if q.record.id == probe.query_id:
                finished(position, q, probe.answer)
                return
            t0 = time.perf_counter()
            try:
                url = await asyncio.to_thread(image_data_url, q.image_path, eopts.image_format)
            except Exception as e:  # missing or corrupt image: that record's error, as in the local path
                finished(position, q, Answer(None, f"{type(e).__name__}: {e}"))
                return
            try:
                state["asked"] += 1
                text = await endpoint.ask(client, model, q.record.prompt, url, cap[q.record.id])
            except openai.APIError as e:
                state["in_a_row"] += 1
                if state["in_a_row"] >= STOP_AFTER_FAILURES_IN_A_ROW:
                    state["stopped"] = True
                reason = endpoint.refusal(e, "the request").one_line()
                finished(position, q, Answer(None, reason, request_failed=True, seconds=time.perf_counter() - t0))
                return
            state["in_a_row"] = 0
            finished(position, q, Answer(text, seconds=time.perf_counter() - t0))

    async with openai.AsyncOpenAI(**endpoint._client_args()) as client:
        tasks = [asyncio.create_task(one(client, position, q)) for position, q in todo]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
    return state["asked"] + (1 if probe.query_id else 0)
