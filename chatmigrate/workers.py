"""Parsing in a worker process: the extractor runs in a child while this process validates and loads.

Parsing is the largest share of a migration (benchmarks/README.md: ~60 % of the CPU of a Slack →
PostgreSQL run), and a Python process uses one core. `in_worker` wraps any file extractor so that its
`records()` runs in a forked child, built afresh there from the same factory (its own open files: a
forked zip handle would share its offset with the parent's), and streams the items back in pickled
batches through a pipe. Nothing in the extractor modules knows about it; a source that reads a server
(a URL) stays in process, where its requests and its rate limits are.

Order is kept (one pipe, FIFO), so checkpoints still follow their channel's records. The pipe holds at
most a batch or two, so memory stays flat. An error of the extractor reaches the parent after every item
read before it, and is raised there as itself. When the parent stops early or dies (SIGKILL included),
the child's next write fails and it exits: nothing is left running.

The model's frozen slot dataclasses pickle slowly through their generic `__setstate__` (~27 µs a Slack
message); the batches use a pickler of their own that writes each record as its field tuple and
rebuilds it through the slot descriptors (~10 µs), without touching how the model pickles elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import inspect
import io
import multiprocessing
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection
from operator import attrgetter
from typing import Any

from chatmigrate import model
from chatmigrate.extractors import Extractor

# Items per pickled batch: large enough to amortise a pipe round trip, small enough that the parent
# starts working early and the pipe holds little.
BATCH_ITEMS = 500
_MODEL_CLASSES = (model.Origin, model.Team, model.User, model.Channel, model.Reaction, model.File, model.Emoji,
                  model.Message, model.Checkpoint, model.Unreadable, model.Skipped)
# What a batch message is: items, the extractor's error (raised in the parent), or the end.
_ITEMS, _ERROR, _END = 0, 1, 2


def default_workers() -> int:
    """The cores this process may use (the default of --workers)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


def _rebuilder(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    """A function that makes a `cls` from its field values through the slot descriptors (which a frozen
    dataclass's own __setattr__ refuses), written out field by field: ~2x faster than a loop."""
    setters = {f"set{i}": getattr(cls, f.name).__set__ for i, f in enumerate(dataclasses.fields(cls))}
    body = "".join(f"    {name}(record, values[{i}])\n" for i, name in enumerate(setters))
    source = (f"def rebuild(values, _new=object.__new__, _cls=_cls, {', '.join(f'{n}={n}' for n in setters)}):\n"
              f"    record = _new(_cls)\n{body}    return record\n")
    namespace: dict[str, Any] = {"_cls": cls, **setters}
    exec(source, namespace)  # the text above, built from the model's own field names
    return namespace["rebuild"]  # type: ignore[no-any-return]


def _reducer(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    # The rebuilder is a global of this module under its own name, so pickle refers to it by name.
    rebuild = _rebuilder(cls)
    rebuild.__name__ = rebuild.__qualname__ = f"_rebuild_{cls.__name__}"
    rebuild.__module__ = __name__
    globals()[rebuild.__name__] = rebuild
    fields = attrgetter(*(f.name for f in dataclasses.fields(cls)))
    return lambda record: (rebuild, (fields(record),))


_DISPATCH = {cls: _reducer(cls) for cls in _MODEL_CLASSES}


def dumps(items: list[Any]) -> bytes:
    """A batch of items as bytes `pickle.loads` turns back into equal items (the fast record form)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH  # type: ignore[assignment]
    pickler.dump(items)
    return buffer.getvalue()


def in_worker(factory: Callable[[], Extractor], location: str, workers: int) -> Extractor:
    """The extractor `factory` builds, with its records read in a worker process when `workers` > 1
    and the source is a local export (an API source, a URL, stays in process).

    With a worker, this process does not build the extractor up front: a short-lived child builds it
    and reports its name, source, scope and methods (building one can hold the export's whole table of
    contents: ~80 MB for a 5M-message Slack zip). A method (open_file…) or another attribute builds
    it here on first use. Errors of `factory` (a bad path, a bad option) are raised here as they are."""
    if workers <= 1 or "://" in location or multiprocessing.get_all_start_methods()[0] != "fork":
        return factory()
    return _WorkerExtractor(factory)  # type: ignore[return-value]


class _WorkerExtractor:
    """The extractor's name, source and scope as the probe found them; `records` runs in a worker;
    anything else from an extractor built here when first asked for."""

    def __init__(self, factory: Callable[[], Extractor]) -> None:
        self._factory = factory
        self._built: Extractor | None = None
        [self._facts] = list(_spawn(functools.partial(_describe, factory)))

    def _extractor(self) -> Extractor:
        if self._built is None:
            self._built = self._factory()
        return self._built

    def __getattr__(self, name: str) -> Any:
        facts = self.__dict__.get("_facts") or {}
        if name in facts["plain"]:
            return facts["plain"][name]
        if name in facts["methods"]:
            return lambda *args, **kwargs: getattr(self._extractor(), name)(*args, **kwargs)
        return getattr(self._extractor(), name)

    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Any]:
        # Forked here, when the run asks for the stream (before its writer thread exists), not at the
        # first item: a fork beside running threads could inherit a lock one of them holds.
        return _spawn(functools.partial(_records_of, self._factory, dict(since) if since else None))


def _describe(factory: Callable[[], Extractor]) -> Iterator[dict[str, Any]]:
    extractor = factory()
    methods = {name for name in dir(extractor) if not name.startswith("_") and name != "records"
               and callable(inspect.getattr_static(extractor, name, None))}
    yield {"plain": {"name": extractor.name, "source": extractor.source, "scope": extractor.scope},
           "methods": methods}


def _records_of(factory: Callable[[], Extractor], since: dict[str, str] | None) -> Iterator[Any]:
    return factory().records(since=since)


def _spawn(items: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """Run `items()` in a forked child; yield what it yields, in order."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(items, send, receive), name="chatmigrate-parse", daemon=True)
    child.start()
    send.close()
    return _consume(child, receive)


def _consume(child: multiprocessing.process.BaseProcess, receive: Connection) -> Iterator[Any]:
    try:
        while True:
            try:
                blob = receive.recv_bytes()
            except EOFError:
                raise RuntimeError(f"the parsing process ended without a word (exit code {child.exitcode}); "
                                   "run again with --workers 1 to see the error") from None
            kind, payload = _loads(blob)
            if kind == _ITEMS:
                yield from payload
            elif kind == _ERROR:
                raise _exception(payload)
            else:
                return
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()  # the run stopped early: the rest of the export is not wanted
        child.join()


def _loads(blob: bytes) -> Any:
    """A batch unpickled with the cyclic GC paused: a batch makes thousands of containers, each 700 of
    which would start a collection (this more than doubled the cost of a batch, measured), and none of
    them can be part of a cycle. The GC runs as usual once the batch is made."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(blob)
    finally:
        if paused:
            gc.enable()


def _produce(items: Callable[[], Iterable[Any]], send: Connection, receive: Connection) -> None:
    receive.close()
    # Ctrl-C reaches the whole process group: the parent decides; the child ends when its pipe does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    batch: list[Any] = []
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        try:
            for item in items():
                batch.append(item)
                if len(batch) >= BATCH_ITEMS:
                    send.send_bytes(dumps([_ITEMS, batch]))
                    batch = []
            end: list[Any] = [_END, None]
        except (BrokenPipeError, ConnectionResetError):
            raise
        except BaseException as exc:  # handed to the parent, which raises it after the items before it
            end = [_ERROR, _portable(exc)]
        if batch:
            send.send_bytes(dumps([_ITEMS, batch]))
        send.send_bytes(pickle.dumps(end))
    send.close()


def _die_with_parent() -> None:
    """Linux: a SIGKILLed parent takes the child with it at once, not only at its next write."""
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _portable(exc: BaseException) -> tuple[Any, ...]:
    """An exception as (class, args, attributes): errors with keyword-only arguments (InputError's
    location) do not survive a plain pickle round trip."""
    state = dict(getattr(exc, "__dict__", {}))
    try:
        blob = pickle.dumps((type(exc), exc.args, state))
        pickle.loads(blob)
        return (type(exc), exc.args, state)
    except Exception:  # an exception that cannot travel: its words and its traceback do
        text = "".join(traceback.format_exception(exc)).strip().splitlines()[-1]
        return (RuntimeError, (f"in the parsing process: {text}",), {})


def _exception(payload: tuple[Any, ...]) -> BaseException:
    cls, args, state = payload
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc
