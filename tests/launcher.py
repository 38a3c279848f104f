"""Run ``python ARGS`` commands without paying the interpreter's import time for each one.

Most of a tiny training run through ``python -m basicsr.train`` is spent importing torch, torchvision and basicsr
(about 7 of 12 s on a 2-core CPU). A launcher process imports ``basicsr`` once (through the installed autoload hook,
so ``srgan_plugin`` first, as for a user) and forks one child per command. The child then does what the interpreter
does for ``python -m MODULE`` / ``python -c CODE`` / ``python SCRIPT``: it sets ``sys.argv`` and ``sys.path[0]``,
runs the module as ``__main__`` through the same import machinery (so ``python -m basicsr.train`` still goes through
the hook's redirect), reports an uncaught exception as a traceback with exit status 1, dies of SIGINT after an
uncaught KeyboardInterrupt, joins threads and runs ``atexit`` handlers. It runs in its own session, in the command's
working directory and environment, with stdout and stderr in files.

What a forked child cannot show, the tests that need it run in a fresh interpreter (``fresh=True``): start-up and
import order (the autoload hook), environment variables read at import time, launchers such as torchrun, and one
end-to-end command per entry point. Children use one OpenMP thread (the launcher imports torch with
``OMP_NUM_THREADS=1``), which also keeps parallel test workers from oversubscribing the CPU.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Optional, Sequence, Union

SERVER = r'''
import json, os, runpy, select, signal, sys, threading, traceback
import basicsr  # noqa: F401  (through the autoload hook: srgan_plugin first)
import srgan_plugin.train  # noqa: F401

def exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1

def child(request):
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a user's shell starts a command
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    out = os.open(request['stdout'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(request['stderr'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if request['stderr'] else out
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    argv, code = request['argv'], 0
    try:
        if argv[0] == '-m':
            sys.argv, sys.path[0] = [argv[1], *argv[2:]], os.getcwd()
            runpy._run_module_as_main(argv[1])
        elif argv[0] == '-c':
            sys.argv, sys.path[0] = ['-c', *argv[2:]], ''
            exec(compile(argv[1], '<string>', 'exec'), sys.modules['__main__'].__dict__)
        else:
            sys.argv, sys.path[0] = list(argv), os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name='__main__')
    except SystemExit as error:
        code = exit_code(error.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    threading._shutdown()
    import atexit
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    if code == -signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)

children, buffer = {}, b''
while True:
    ready = select.select([0], [], [], 0.01 if children else None)[0]
    if ready:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        buffer += chunk
        while b'\n' in buffer:
            line, buffer = buffer.split(b'\n', 1)
            request = json.loads(line)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                child(request)
            children[pid] = request['id']
            print(json.dumps({'id': request['id'], 'pid': pid}), flush=True)
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        print(json.dumps({'id': children.pop(pid), 'returncode': os.waitstatus_to_exitcode(status)}), flush=True)
'''


def user_env(env: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The test process's environment without PYTHONPATH (a user's shell), one OpenMP thread, then ``env``."""
    full = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    full.setdefault('OMP_NUM_THREADS', '1')
    full.update(env or {})
    return full


class _Launcher:
    """The forking process and a thread that collects what it reports (child pids, exit statuses)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, '-c', SERVER],
                                        stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE,
                                        env=user_env(),
                                        cwd=tempfile.gettempdir())
        self.lock = threading.Lock()
        self.pids: dict[int, int] = {}
        self.returncodes: dict[int, int] = {}
        self.changed = threading.Condition(self.lock)
        self.next_id = 0
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            with self.changed:
                if 'pid' in message:
                    self.pids[message['id']] = message['pid']
                else:
                    self.returncodes[message['id']] = message['returncode']
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def launch(self, request: dict) -> tuple[int, int]:
        with self.changed:
            request_id = self.next_id
            self.next_id += 1
            self.process.stdin.write((json.dumps({**request, 'id': request_id}) + '\n').encode())
            self.process.stdin.flush()
            if not self.changed.wait_for(lambda: request_id in self.pids or self.process.poll() is not None, 60):
                raise RuntimeError('the test launcher did not answer in 60 s')
            if request_id not in self.pids:
                raise RuntimeError(f'the test launcher died (exit status {self.process.returncode})')
            return request_id, self.pids[request_id]

    def wait(self, request_id: int, timeout: Optional[float]) -> Optional[int]:
        with self.changed:
            self.changed.wait_for(lambda: request_id in self.returncodes or self.process.poll() is not None, timeout)
            return self.returncodes.get(request_id)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


_launcher: Optional[_Launcher] = None


def _get_launcher() -> _Launcher:
    global _launcher
    if _launcher is None or _launcher.process.poll() is not None:
        _launcher = _Launcher()
        atexit.register(_launcher.close)
    return _launcher


class Forked:
    """One command in a forked child: the part of ``subprocess.Popen`` the tests use (text mode)."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str], merge_stderr: bool) -> None:
        self.args = [sys.executable, *args]
        self.returncode: Optional[int] = None
        self._dir = Path(tempfile.mkdtemp(prefix='forked-'))
        self._out = self._dir / 'stdout'
        self._err = None if merge_stderr else self._dir / 'stderr'
        self._id, self.pid = _get_launcher().launch({
            'argv': list(args),
            'cwd': str(cwd),
            'env': env,
            'stdout': str(self._out),
            'stderr': str(self._err) if self._err else None
        })

    @property
    def stdout(self) -> IO[str]:
        return open(self._out, encoding='utf-8', errors='replace')

    def poll(self) -> Optional[int]:
        return self.wait(timeout=0) if self.returncode is None else self.returncode

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        if self.returncode is None:
            self.returncode = _get_launcher().wait(self._id, timeout)
            if self.returncode is None and timeout != 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: Optional[float] = None) -> tuple[str, Optional[str]]:
        self.wait(timeout)
        output = self._read(self._out), (self._read(self._err) if self._err else None)
        shutil.rmtree(self._dir, ignore_errors=True)
        return output

    @staticmethod
    def _read(path: Path) -> str:
        return path.read_text(encoding='utf-8', errors='replace')


def popen(args: Sequence[str],
          cwd: Path,
          env: Optional[dict[str, str]] = None,
          fresh: bool = False,
          merge_stderr: bool = False) -> subprocess.Popen | Forked:
    """Start ``python ARGS`` in ``cwd`` in its own session: forked (default) or in a fresh interpreter."""
    if not fresh:
        return Forked(args, cwd, user_env(env), merge_stderr)
    return subprocess.Popen([sys.executable, *args],
                            cwd=cwd,
                            env=user_env(env),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                            text=True,
                            start_new_session=True,
                            preexec_fn=signals_as_in_a_terminal)


def signals_as_in_a_terminal() -> None:
    """Ctrl-C and SIGTERM with their default dispositions, unblocked, as a user's shell starts a command: a test
    process (a pytest-xdist worker, after tests that handle signals) may ignore or block them, and a child would
    inherit that."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])


def python(args: Sequence[str],
           cwd: Path,
           env: Optional[dict[str, str]] = None,
           timeout: float = 600,
           fresh: bool = False) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` to the end, like ``subprocess.run(..., capture_output=True, text=True)``."""
    process = popen(args, cwd, env, fresh)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return subprocess.CompletedProcess([sys.executable, *args], process.returncode, stdout, stderr)


Popen = Union[subprocess.Popen, Forked]  # what popen returns
