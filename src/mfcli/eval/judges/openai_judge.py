"""`openai`: EMT's LLM judge, verbatim (Appendix C.1), through the official `openai` client.

Any OpenAI-compatible server works (`--base-url` / OPENAI_BASE_URL: vLLM, Ollama, ...). Requests run
with bounded concurrency and retry with exponential backoff on 429, 5xx, timeouts and dropped
connections. Replies are cached on disk keyed by model and prompt, so a re-run costs nothing and a
run that dies keeps everything judged so far. The API key is read from OPENAI_API_KEY only and is
never written to the cache, the output or a log line.
"""

from __future__ import annotations

from mfcli.cache import cache_root
from mfcli.kinds import CLASSIFICATION

import asyncio
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Optional

from mfcli.errors import MfcliError
from mfcli.eval.judges.base import CORRECT, EMPTY, MULTI_LABEL, OFF_LABEL, WRONG_LABEL, Item, Judgement
from mfcli.eval.labels import named_labels
from mfcli.eval.judges.registry import register
from mfcli.params import Param

PROMPT = ('Please only answer the question in yes or no. Is the "Prediction" correctly predicting the right '
          '"Label"? Label: {label}; Prediction: {outputs}.')
# EMT Appendix C.1: the judge's sampling parameters
PARAMS = dict(temperature=0.2, max_tokens=64, top_p=1, frequency_penalty=0, presence_penalty=0)
DEFAULT_MODEL = "gpt-3.5-turbo"


def api_key() -> str:
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key:
        raise MfcliError("the openai judge needs OPENAI_API_KEY in the environment.",
                         "Export it (any non-empty value for a local server that ignores keys).")
    return key


class ReplyCache:
    """Append-only JSONL of {key, reply}; the key hashes model, prompt and parameters."""

    def __init__(self, path: Path):
        self.path = path
        self.replies: dict[str, str] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.replies[row["key"]] = row["reply"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a torn last line from a killed run
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")

    @staticmethod
    def key(model: str, prompt: str) -> str:
        blob = json.dumps({"model": model, "prompt": prompt, **PARAMS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def put(self, key: str, reply: str) -> None:
        self.replies[key] = reply
        self._file.write(json.dumps({"key": key, "reply": reply}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def default_cache_path() -> Path:
    return cache_root() / "judge-cache" / "openai.jsonl"


def parse_reply(reply: str) -> bool | None:
    words = reply.strip().lower().lstrip("\"'* ").split()
    head = words[0].strip(".,!:;\"'") if words else ""
    return True if head == "yes" else False if head == "no" else None


class OpenAIJudge:
    name = "openai"
    kind = CLASSIFICATION  # a label judge: EMT's classification records, right or wrong
    metric = "accuracy"

    def __init__(self, model: str = DEFAULT_MODEL, base_url: str | None = None, *, concurrency: int = 16,
                 max_retries: int = 6, timeout: float = 30.0, cache: Path | None = None, backoff: float = 0.5):
        api_key()  # fail before any work
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.cache_path = cache or default_cache_path()
        self.calls = 0  # requests actually sent (a cached re-run sends none)

    async def _ask(self, client, prompt: str, sem) -> str:
        import openai

        async with sem:
            for attempt in range(self.max_retries + 1):
                try:
                    self.calls += 1
                    resp = await client.chat.completions.create(
                        model=self.model, messages=[{"role": "user", "content": prompt}], **PARAMS)
                    return resp.choices[0].message.content or ""
                except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                        openai.APIConnectionError) as e:
                    retriable = e
                except openai.APIStatusError as e:
                    if e.status_code < 500:
                        raise MfcliError(f"the judge server refused the request (HTTP {e.status_code}).",
                                         "Check --model, --base-url and the API key.") from None
                    retriable = e
                if attempt == self.max_retries:
                    raise MfcliError(f"the judge server failed {attempt + 1} times ({type(retriable).__name__}) "
                                     f"at {self.base_url or 'the OpenAI API'}.",
                                     "Everything judged so far is cached; re-run to continue.") from None
                await asyncio.sleep(self.backoff * (2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _run(self, prompts: list[str], cache: ReplyCache) -> None:
        from openai import AsyncOpenAI

        todo = sorted({p for p in prompts if ReplyCache.key(self.model, p) not in cache.replies})
        if not todo:
            return
        sem = asyncio.Semaphore(self.concurrency)
        async with AsyncOpenAI(api_key=api_key(), base_url=self.base_url, timeout=self.timeout,
                               max_retries=0) as client:
            async def one(p: str):
                cache.put(ReplyCache.key(self.model, p), await self._ask(client, p, sem))

            tasks = [asyncio.create_task(one(p)) for p in todo]
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()

    def judge(self, items: list[Item]) -> list[Judgement]:
        # Empty answers and lists of labels are never correct, whatever an LLM might say: decided
        # here without a request (EMT's public evaluators scored such answers as hits).
        guarded = {}
        for n, item in enumerate(items):
            named = named_labels(item.output or "", item.labels)
            if not (item.output or "").strip():
                guarded[n] = Judgement(EMPTY, None, self.name)
            elif len(named) > 1:
                guarded[n] = Judgement(MULTI_LABEL, None, self.name, {"named": named})
        asked = [i for n, i in enumerate(items) if n not in guarded]
        prompts = [PROMPT.format(label=i.label, outputs=i.output) for i in asked]
        cache = ReplyCache(self.cache_path)
        try:
            asyncio.run(self._run(prompts, cache))
            replies = iter([cache.replies[ReplyCache.key(self.model, p)] for p in prompts])
        finally:
            cache.close()
        return [guarded[n] if n in guarded else self._verdict(item, next(replies)) for n, item in enumerate(items)]

    def _verdict(self, item: Item, reply: str) -> Judgement:
        """The LLM decides correct or not; the label analysis names the kind of failure."""
        yes = parse_reply(reply)
        named = named_labels(item.output, item.labels)
        if yes:
            verdict, matched = CORRECT, item.label
        elif len(named) == 1 and named[0] != item.label:
            verdict, matched = WRONG_LABEL, named[0]
        else:
            verdict, matched = OFF_LABEL, (named[0] if named else None)
        return Judgement(verdict, matched, self.name, {"reply": reply[:200], "parsed": yes})


@register("openai", summary="an LLM asked whether the answer names the label (EMT's GPT-3.5 judge)",
          options=(Param("model", str, "gpt-3.5-turbo", "openai judge model (EMT: gpt-3.5-turbo).", ("--model",)),
                   Param("base_url", Optional[str], None, "OpenAI-compatible server URL (default OPENAI_BASE_URL)."),
                   Param("concurrency", int, 16, "openai requests in flight."),
                   Param("cache", Optional[str], None, "openai reply cache file (default in the mfcli cache dir).")))
def build(o, decisive: bool = True) -> OpenAIJudge:
    return OpenAIJudge(o.model, o.base_url, concurrency=o.concurrency, cache=Path(o.cache) if o.cache else None)
