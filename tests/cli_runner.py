"""Run the ``imagewise`` command line in-process and capture what it prints.

``CliRunner().invoke(cli, ["analyze", ...])`` calls ``cli`` (``imagewise.cli.main.cli``) with
the arguments, standard input from ``input``, extra environment from ``env``; the result holds
the exit status, standard output, standard error, and ``output`` (both, in the order written).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class Result:
    def __init__(
        self, exit_code: int, stdout: str, stderr: str, output: str, exception: BaseException | None
    ) -> None:
        self.exit_code, self.stdout, self.stderr, self.output = exit_code, stdout, stderr, output
        self.exception = exception

    def __repr__(self) -> str:
        return f"<Result exit_code={self.exit_code} output={self.output[-400:]!r}>"


class _Tee(io.StringIO):
    def __init__(self, both: io.StringIO) -> None:
        super().__init__()
        self._both = both

    def write(self, s: str) -> int:
        self._both.write(s)
        return super().write(s)


class CliRunner:
    def invoke(
        self,
        cli: Callable[[Sequence[str]], int],
        args: Sequence[str],
        input: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
        catch_exceptions: bool = True,
    ) -> Result:
        both = io.StringIO()
        out, err = _Tee(both), _Tee(both)
        data = input.encode() if isinstance(input, str) else (input or b"")
        stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        saved_env = {k: os.environ.get(k) for k in (env or {})}
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = stdin, out, err
        for k, v in (env or {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        exception: BaseException | None = None
        try:
            code: Any = cli(list(args))
        except SystemExit as e:
            code = e.code
        except Exception as e:
            if not catch_exceptions:
                raise
            exception, code = e, 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if code is None:
            code = 0
        elif not isinstance(code, int):
            err.write(f"{code}\n")
            code = 1
        return Result(code, out.getvalue(), err.getvalue(), both.getvalue(), exception)
