"""The Python package, installed with pip into fresh venvs: what a gunicorn user does with it."""

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import APPS, ROOT, children, clean_env, eventually, http_get, ps_args

VERSION_LINE = re.compile(r"^gunicorn \(version \d+\.\d+\.\d+\)$")


def python_of(venv):
    return venv / "bin" / "python"


def run(argv, cwd=APPS, timeout=60, env=None):
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def site_packages(venv):
    out = run([python_of(venv), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    return Path(out.stdout.strip())


def test_console_script_lands_in_the_venv(venv):
    script = venv / "bin" / "gunicorn"
    assert script.exists()
    first = script.read_text().splitlines()[0]
    # pip writes the venv's own python into the shebang: no activation needed.
    assert first == "#!" + str(python_of(venv)), first


def test_version_everywhere(venv, reference_venv):
    for argv in ([venv / "bin" / "gunicorn", "--version"],
                 [python_of(venv), "-m", "gunicorn", "--version"]):
        out = run(argv)
        assert out.returncode == 0, out
        assert VERSION_LINE.match(out.stdout.strip()), out.stdout
    ref = run([reference_venv / "bin" / "gunicorn", "--version"])
    assert VERSION_LINE.match(ref.stdout.strip()), ref
    code = ("import gunicorn; print(gunicorn.__version__, gunicorn.version_info, "
            "gunicorn.SERVER, gunicorn.SERVER_SOFTWARE)")
    out = run([python_of(venv), "-c", code])
    version, rest = out.stdout.split(" ", 1)
    major, minor, patch = (int(p) for p in version.split("."))
    assert rest.strip() == "(%d, %d, %d) gunicorn gunicorn/%s" % (major, minor, patch, version)


def test_serves_from_the_venv_without_activation(venv, serve):
    """No VIRTUAL_ENV, PATH without the venv: the interpreter, sys.prefix and packages are the
    venv's, because the master is the venv's python."""
    (site_packages(venv) / "only_in_this_venv.py").write_text("MARK = %r\n" % venv.name)
    server = serve([venv / "bin" / "gunicorn", "-k", "gthread", "--threads", "2", "-w", "2",
                    "-b", "127.0.0.1:{port}", "venv_probe:app"])
    status, _, body = http_get(server.port)
    assert status == 200, server.output()
    import json
    probe = json.loads(body)
    assert probe["prefix"] == str(venv)
    assert probe["executable"].startswith(str(venv / "bin" / "python")), probe
    assert probe["mark"] == venv.name
    assert server.stop() == 0, server.output()


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent", "eventlet"])
def test_every_worker_class_serves_flask(venv, serve, worker_class):
    server = serve([venv / "bin" / "gunicorn", "-k", worker_class, "-w", "2",
                    "-b", "127.0.0.1:{port}", "flask_app:app"])
    for _ in range(3):
        status, _, body = http_get(server.port)
        assert (status, body) == (200, b"Hello from Flask\n"), server.output()
    assert "Using worker: %s" % worker_class in server.output()
    assert server.stop() == 0, server.output()


def test_flask_app_factory(venv, serve):
    server = serve([venv / "bin" / "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}",
                    "factory:create_app()"])
    status, _, _ = http_get(server.port)
    assert status == 200, server.output()
    server = serve([venv / "bin" / "gunicorn", "-w", "1", "-b", "127.0.0.1:{port}",
                    "flask_app:app"])
    status, _, body = http_get(server.port)
    assert (status, body) == (200, b"Hello from Flask\n"), server.output()


def test_django_project(venv, serve, tmp_path):
    out = run([python_of(venv), "-m", "django", "startproject", "mysite", tmp_path])
    assert out.returncode == 0, out
    server = serve([venv / "bin" / "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}",
                    "mysite.wsgi"], cwd=tmp_path)
    status, _, body = http_get(server.port)
    assert status == 200, server.output()
    assert b"The install worked successfully" in body
    status, headers, _ = http_get(server.port, "/admin/")
    assert status == 302 and "/admin/login/" in headers["location"]


@pytest.mark.parametrize("worker_class", ["asgi", "uvicorn.workers.UvicornWorker"])
def test_asgi_worker_serves_from_the_package(venv, serve, worker_class):
    """The asgi worker from the wheel, on asyncio (the package venvs have no uvloop: `auto`
    falls back), under gunicorn's name and uvicorn's."""
    server = serve([venv / "bin" / "gunicorn", "-k", worker_class, "-w", "2",
                    "-b", "127.0.0.1:{port}", "asgi_app:app"])
    for _ in range(3):
        status, _, body = http_get(server.port)
        assert (status, body) == (200, b"Hello, world!"), server.output()
    status, _, body = http_get(server.port, "/scope")
    assert status == 200 and b'"started": "yes"' in body, body
    assert "Using worker: %s" % worker_class in server.output()
    assert server.stop() == 0, server.output()


def test_django_project_over_asgi(venv, serve, tmp_path):
    out = run([python_of(venv), "-m", "django", "startproject", "mysite", tmp_path])
    assert out.returncode == 0, out
    server = serve([venv / "bin" / "gunicorn", "-k", "asgi", "-w", "2",
                    "-b", "127.0.0.1:{port}", "mysite.asgi"], cwd=tmp_path)
    status, _, body = http_get(server.port)
    assert status == 200, server.output()
    assert b"The install worked successfully" in body
    status, headers, _ = http_get(server.port, "/admin/")
    assert status == 302 and "/admin/login/" in headers["location"]
    assert server.stop() == 0, server.output()


def test_process_titles(venv, serve):
    server = serve([venv / "bin" / "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}",
                    "hello:app"])
    master = server.proc.pid
    assert eventually(lambda: len(children(master)) == 2)
    assert eventually(lambda: ps_args(master) == "gunicorn: master [hello:app]"), ps_args(master)
    for pid in children(master):
        assert eventually(lambda: ps_args(pid) == "gunicorn: worker [hello:app]"), ps_args(pid)
    named = serve([venv / "bin" / "gunicorn", "-n", "shop", "-b", "127.0.0.1:{port}",
                   "hello:app"])
    assert eventually(lambda: ps_args(named.proc.pid) == "gunicorn: master [shop]")


def test_import_error_names_the_interpreter(venv):
    out = run([venv / "bin" / "gunicorn", "-b", "127.0.0.1:0", "nosuchmodule:app"])
    assert out.returncode in (3, 4), out
    text = out.stdout + out.stderr
    assert "No module named 'nosuchmodule'" in text
    line = next(l for l in text.splitlines() if "sys.path" in l)
    assert str(venv / "bin" / "python") in line and str(APPS) in line, line


def test_usage_errors_match_gunicorn(venv, reference_venv, tmp_path):
    """Same exit statuses as gunicorn 27 for a missing application and --check-config."""
    for args in ([], ["--check-config", "hello:app"], ["--check-config", "nosuchmodule:app"]):
        ours = run([venv / "bin" / "gunicorn"] + args, cwd=APPS)
        theirs = run([reference_venv / "bin" / "gunicorn"] + args, cwd=APPS)
        assert ours.returncode == theirs.returncode, (args, ours, theirs)
    ours = run([venv / "bin" / "gunicorn"], cwd=APPS)
    assert "No application module specified." in ours.stderr


def test_missing_parts_of_gunicorns_api_say_so(venv):
    out = run([python_of(venv), "-c", "import gunicorn.workers.sync"])
    assert out.returncode == 1
    assert "ModuleNotFoundError: gunicorn.workers is not provided by gunicorn-rs" in out.stderr


CUSTOM_APP = '''
import os, sys
import gunicorn.app.base

def app(environ, start_response):
    body = ("custom %s %s" % (os.getpid(), environ["wsgi.multithread"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

def post_fork(server, worker):
    with open(os.environ["MARKS"], "a") as f:
        f.write("post_fork %d\\n" % worker.pid)

class StandaloneApplication(gunicorn.app.base.BaseApplication):
    def __init__(self, app, options=None):
        self.options = options or {}
        self.application = app
        super().__init__()

    def load_config(self):
        config = {key: value for key, value in self.options.items()
                  if key in self.cfg.settings and value is not None}
        for key, value in config.items():
            self.cfg.set(key.lower(), value)

    def load(self):
        return self.application

if __name__ == "__main__":
    options = {
        "bind": "127.0.0.1:%s" % sys.argv[1],
        "workers": 2,
        "worker_class": "gthread",
        "threads": 2,
        "post_fork": post_fork,
        "not_a_setting_is_skipped_by_the_recipe": 1,
    }
    StandaloneApplication(app, options).run()
'''


def test_custom_application_recipe(venv, serve, tmp_path):
    (tmp_path / "standalone.py").write_text(CUSTOM_APP)
    marks = tmp_path / "marks"
    server = serve([python_of(venv), "standalone.py", "{port}"], cwd=tmp_path,
                   env=clean_env(MARKS=str(marks)))
    status, _, body = http_get(server.port)
    assert status == 200, server.output()
    assert body.startswith(b"custom ") and body.endswith(b" True")
    assert eventually(lambda: marks.exists() and len(marks.read_text().splitlines()) == 2)
    assert "Using worker: gthread" in server.output()
    assert server.stop() == 0, server.output()


def test_custom_application_bad_setting(venv, tmp_path):
    script = tmp_path / "bad.py"
    script.write_text(textwrap.dedent('''
        import gunicorn.app.base
        class App(gunicorn.app.base.BaseApplication):
            def load_config(self):
                self.cfg.set("no_such_setting", 1)
            def load(self):
                return None
        App().run()
    '''))
    out = run([python_of(venv), script], cwd=tmp_path)
    assert out.returncode == 1
    assert "Error: No configuration setting for: no_such_setting" in out.stderr
    script.write_text(textwrap.dedent('''
        import gunicorn.app.base
        class App(gunicorn.app.base.BaseApplication):
            def load_config(self):
                self.cfg.set("workers", "many")
            def load(self):
                return None
        App().run()
    '''))
    out = run([python_of(venv), script], cwd=tmp_path)
    assert out.returncode == 1
    assert "workers" in out.stderr and "many" in out.stderr, out.stderr


APPLICATION_CLASS = '''
import gunicorn.app.base

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the Application class"]

class CommandLineApp(gunicorn.app.base.Application):
    def init(self, parser, opts, args):
        return {"workers": 3, "bind": "127.0.0.1:1"}

    def load(self):
        return app

CommandLineApp().run()
'''


def test_application_class_reads_the_command_line(venv, serve, tmp_path):
    """gunicorn.app.base.Application: init()'s settings rank below the command line."""
    (tmp_path / "cliapp.py").write_text(APPLICATION_CLASS)
    server = serve([python_of(venv), "cliapp.py", "-b", "127.0.0.1:{port}"], cwd=tmp_path)
    status, _, body = http_get(server.port)
    assert (status, body) == (200, b"from the Application class"), server.output()
    assert eventually(lambda: len(children(server.proc.pid)) == 3)


PASTE_INI = '''
[app:main]
use = call:pasteapp:make_app
greeting = hello

[loggers]
keys = root, gunicorn

[handlers]
keys = console

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = console

[logger_gunicorn]
level = INFO
handlers = console
qualname = gunicorn.error
propagate = 0

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = plain

[formatter_plain]
format = PASTELOG %(levelname)s %(message)s
'''

PASTE_APP = '''
def make_app(global_conf, greeting="none"):
    def app(environ, start_response):
        body = ("%s %s" % (greeting, global_conf.get("who", "?"))).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    return app
'''


def test_paste_ini(venv, serve, tmp_path):
    (tmp_path / "development.ini").write_text(PASTE_INI)
    (tmp_path / "pasteapp.py").write_text(PASTE_APP)
    server = serve([venv / "bin" / "gunicorn", "--paste", "development.ini#main",
                    "--paste-global", "who=world", "-b", "127.0.0.1:{port}"], cwd=tmp_path)
    status, _, body = http_get(server.port)
    assert (status, body) == (200, b"hello world"), server.output()
    # The ini's [loggers] configure logging, as gunicorn's --paste does.
    assert eventually(lambda: "PASTELOG INFO Booting worker" in server.output()), server.output()
    assert ps_args(server.proc.pid) == "gunicorn: master [%s]" % (tmp_path / "development.ini")


def test_paste_missing_ini(venv, tmp_path):
    out = run([venv / "bin" / "gunicorn", "--paste", "nothere.ini"], cwd=tmp_path)
    assert out.returncode == 1
    assert "Error: '%s' not found" % (tmp_path / "nothere.ini") in out.stderr


SERVER_INI = '''
[app:main]
use = call:pasteapp:make_app
greeting = served

[server:main]
use = egg:gunicorn-rs#main
host = 127.0.0.1
port = {port}
workers = 2
worker_class = gthread
threads = 2
'''

PSERVE = '''
# What pserve and Zope's runwsgi do with an ini file.
import os, sys
from paste.deploy import loadapp, loadserver
uri = "config:" + os.path.abspath(sys.argv[1])
server = loadserver(uri)
app = loadapp(uri)
server(app)
'''


def test_paste_server_runner(venv, serve, tmp_path):
    from conftest import free_port
    port = free_port()
    (tmp_path / "site.ini").write_text(SERVER_INI.replace("{port}", str(port)))
    (tmp_path / "pasteapp.py").write_text(PASTE_APP)
    (tmp_path / "pserve.py").write_text(PSERVE)
    server = serve([python_of(venv), "pserve.py", "site.ini"], cwd=tmp_path, wait=False)
    server.port = port
    server.ready()
    status, _, body = http_get(port)
    assert (status, body) == (200, b"served ?"), server.output()
    assert "Using worker: gthread" in server.output()
    assert eventually(lambda: len(children(server.proc.pid)) == 2)


def test_paste_server_runner_reads_the_config_it_names(venv, serve, tmp_path):
    """`config = python:MODULE` in the server section: the gunicorn config file is read, and
    the section's own keys win over it (workers = 2 here, 3 in the file)."""
    from conftest import free_port
    port = free_port()
    ini = SERVER_INI.replace("{port}", str(port)) + "config = python:pasteconf\n"
    (tmp_path / "site.ini").write_text(ini)
    (tmp_path / "pasteconf.py").write_text("workers = 3\nthreads = 3\nproc_name = 'from-conf'\n")
    (tmp_path / "pasteapp.py").write_text(PASTE_APP)
    (tmp_path / "pserve.py").write_text("import sys; sys.path.insert(0, '.')\n" + PSERVE)
    server = serve([python_of(venv), "pserve.py", "site.ini"], cwd=tmp_path, wait=False)
    server.port = port
    server.ready()
    status, _, body = http_get(port)
    assert (status, body) == (200, b"served ?"), server.output()
    assert eventually(lambda: len(children(server.proc.pid)) == 2), server.output()
    assert ps_args(server.proc.pid) == "gunicorn: master [from-conf]"


def test_usr2_starts_a_new_master_from_the_venv(venv, serve):
    """USR2 re-executes the command the master was started with: the venv's python and the
    console script, so the new master runs the same environment."""
    server = serve([venv / "bin" / "gunicorn", "-w", "1", "-b", "127.0.0.1:{port}",
                    "venv_probe:app"])
    old = server.proc.pid
    assert eventually(lambda: len(children(old)) == 1)
    os.kill(old, signal.SIGUSR2)

    def new_master():
        return [p for p in children(old) if ps_args(p).startswith("gunicorn: master")]

    assert eventually(new_master, 30), server.output()
    new = new_master()[0]
    assert eventually(lambda: len(children(new)) == 1, 30), server.output()
    assert server.stop() == 0
    status, _, body = http_get(server.port)
    assert status == 200 and str(venv).encode() in body
    os.kill(new, signal.SIGTERM)
    assert eventually(lambda: not Path("/proc/%d" % new).exists() or
                      "Z" in Path("/proc/%d/stat" % new).read_text().rsplit(")", 1)[1][:3], 30)


def test_pex(venv, serve, tmp_path):
    """The PEX recipe: one file with the server, the app's dependencies and the console
    script."""
    pex = os.environ.get("PKG_PEX")
    wheels = os.environ.get("PKG_WHEELS")
    if not pex or not wheels:
        pytest.fail("PKG_PEX and PKG_WHEELS are set by scripts/test")
    version = run([python_of(venv), "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"])
    tag = version.stdout.strip()
    wheel = next(Path(wheels).glob("gunicorn_rs-*-%s-*.whl" % tag), None) or \
        next(Path(wheels).glob("gunicorn_rs-*-abi3-*.whl"))
    target = tmp_path / "app.pex"
    out = run([pex, wheel, "flask", "-c", "gunicorn", "-o", target,
               "--python", python_of(venv)], cwd=tmp_path, timeout=300,
              env=clean_env(HOME=str(tmp_path), PEX_ROOT=str(tmp_path / "pex-root")))
    assert out.returncode == 0, out
    server = serve([python_of(venv), target, "-w", "2", "-b", "127.0.0.1:{port}",
                    "--chdir", APPS, "flask_app:app"], cwd=tmp_path,
                   env=clean_env(HOME=str(tmp_path), PEX_ROOT=str(tmp_path / "pex-root")))
    status, _, body = http_get(server.port)
    assert (status, body) == (200, b"Hello from Flask\n"), server.output()


def test_install_on_an_unsupported_python_is_refused(tmp_path):
    old = os.environ.get("PKG_OLD_PYTHON")
    if not old:
        pytest.skip("no CPython older than 3.10 on this machine")
    subprocess.run([old, "-m", "venv", tmp_path / "old"], check=True, timeout=120)
    # A source install, as a user with the Rust toolchain does it: maturin reads the crate's
    # metadata with cargo before pip compares the Python version.
    import shutil
    cargo_dir = os.path.dirname(shutil.which("cargo"))
    out = run([tmp_path / "old" / "bin" / "pip", "install", "--disable-pip-version-check", ROOT],
              cwd=tmp_path, timeout=300,
              env=clean_env(HOME=os.environ["HOME"], PATH=cargo_dir + ":/usr/bin:/bin"))
    assert out.returncode != 0
    assert "requires a different Python" in out.stderr and ">=3.10" in out.stderr, out.stderr


def test_gunicornc_console_script(venv, reference_venv, serve, tmp_path):
    """The `gunicornc` console script (the client built into the extension module) drives our
    server and gunicorn 27's, and gunicorn 27's `gunicornc` drives ours: same answers."""
    import json
    ours = venv / "bin" / "gunicornc"
    theirs = reference_venv / "bin" / "gunicornc"
    assert ours.read_text().splitlines()[0] == "#!" + str(python_of(venv))
    sock = tmp_path / "ours.ctl"
    server = serve([venv / "bin" / "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}",
                    "--control-socket", sock, "hello:app"])
    ref_sock = tmp_path / "ref.ctl"
    ref = serve([reference_venv / "bin" / "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}",
                 "--control-socket", ref_sock, "hello:app"])
    assert eventually(lambda: sock.exists() and ref_sock.exists())
    for client in (ours, theirs):
        for path in (sock, ref_sock):
            out = run([client, "-s", path, "-j", "-c", "show workers"])
            assert out.returncode == 0, out
            assert json.loads(out.stdout)["count"] == 2, out.stdout
        helps = [run([client, "-s", path, "-c", "help"]).stdout for path in (sock, ref_sock)]
        assert helps[0] == helps[1] and "worker add [N]" in helps[0]
        bad = run([client, "-s", sock, "-c", "bogus"])
        assert bad.returncode == 1
        assert bad.stderr == "Error: Invalid argument: Unknown command: bogus\n", bad.stderr
    out = run([ours, "-s", sock, "-c", "worker add 1"])
    assert out.returncode == 0, out
    assert eventually(lambda: len(children(server.proc.pid)) == 3), server.output()
    out = run([ours, "-s", ref_sock, "-c", "worker remove"])
    assert out.returncode == 0, out
    assert eventually(lambda: len(children(ref.proc.pid)) == 1), ref.output()
    out = run([ours, "-s", sock, "-j", "-c", "shutdown"])
    assert json.loads(out.stdout) == {"status": "shutting_down", "mode": "graceful"}
    assert server.proc.wait(timeout=30) == 0, server.output()
    assert not sock.exists()


def test_dirty_arbiter(venv, serve):
    """The master is the venv's python: the dirty arbiter and its workers run the package's own
    gunicorn/dirty/ (docs/dirty.md), and the web workers reach them through
    $GUNICORN_DIRTY_SOCKET, which the master sets in os.environ before forking them."""
    import json
    server = serve([venv / "bin" / "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}",
                    "--dirty-app", "dirty_tasks:Counter", "--dirty-workers", "1",
                    "--dirty-timeout", "2", "dirty_web:app"])
    answers = []
    for path in ["/call?action=incr", "/call?action=incr", "/stream?n=2",
                 "/call?action=nap&args=%5B5%5D", "/call?action=incr"]:
        status, _, body = http_get(server.port, path)
        assert status == 200, server.output()
        answers.append(json.loads(body))
    assert [a.get("result", {}).get("count") for a in answers[:2]] == [1, 2], answers
    assert answers[2] == {"result": ["t0", "t1"]}
    assert answers[3]["error"] == "DirtyTimeoutError", answers[3]
    # The worker running the stuck task was replaced: a fresh count.
    assert answers[4].get("result", {}).get("count") == 1, (answers[4], server.output())
    assert "Spawned dirty arbiter (pid: " in server.output(), server.output()
    assert server.stop() == 0, server.output()


# Standard-library modules that gunicorn 27's master has imported when it forks its workers.
MASTER_STDLIB = ("ssl", "json", "email.utils", "email.message", "datetime", "importlib.metadata",
                 "zipfile", "argparse")
MODULES_AT_FORK = '''
import os, sys
def post_fork(server, worker):
    with open(os.environ["MARKS"], "w") as f:
        f.write(" ".join(m for m in %r + ("gevent", "eventlet") if m in sys.modules))
''' % (MASTER_STDLIB,)


def test_workers_start_with_gunicorns_stdlib_modules(venv, reference_venv, serve, tmp_path):
    """As gunicorn 27's workers do, ours find ssl, json, email... already imported by the master
    (shared copy-on-write, OpenSSL initialized once: docs/benchmarks.md, "Memory"); never the
    greenlet libraries, which patch the standard library in the worker."""
    config = tmp_path / "conf.py"
    config.write_text(MODULES_AT_FORK)
    for name, gunicorn in (("ours", venv / "bin" / "gunicorn"),
                           ("gunicorn 27", reference_venv / "bin" / "gunicorn")):
        marks = tmp_path / ("marks-" + name.replace(" ", ""))
        server = serve([gunicorn, "-c", config, "-b", "127.0.0.1:{port}", "hello:app"],
                       env=clean_env(MARKS=str(marks)))
        assert eventually(lambda: marks.exists() and marks.read_text()), server.output()
        assert marks.read_text().split() == list(MASTER_STDLIB), (name, marks.read_text())
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize("worker_class", ["gevent", "eventlet"])
def test_greenlet_workers_patch_without_warnings(venv, serve, worker_class):
    """The modules imported in the master are ones gevent and eventlet patch cleanly after the
    fact: no MonkeyPatchWarning (gunicorn 27's master imports them too)."""
    server = serve([venv / "bin" / "gunicorn", "-k", worker_class, "-b", "127.0.0.1:{port}",
                    "flask_app:app"], env=clean_env(PYTHONWARNINGS="default"))
    status, _, body = http_get(server.port)
    assert (status, body) == (200, b"Hello from Flask\n"), server.output()
    output = server.output()
    assert "Warning" not in output, output
    assert server.stop() == 0, server.output()


def load_segments(path):
    """(p_offset, p_vaddr, p_align) of each PT_LOAD of a 64-bit little-endian ELF file."""
    import struct
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    found = []
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr = struct.unpack_from("<IIQQ", data, phoff + i * phentsize)
        p_align, = struct.unpack_from("<Q", data, phoff + i * phentsize + 0x30)
        if p_type == 1:
            found.append((p_offset, p_vaddr, p_align))
    return found


def test_extension_code_is_laid_out_in_64k_windows(venv):
    """The extension's segments agree with their file offsets modulo 64 KiB: a worker's 64 KiB
    fault-around windows then map one page-cache folio each, not two (gunicorn-cli/build.rs)."""
    out = run([python_of(venv), "-c", "import gunicorn._native as n; print(n.__file__)"])
    assert out.returncode == 0, out
    segments = load_segments(out.stdout.strip())
    assert len(segments) >= 2, segments
    for offset, vaddr, align in segments:
        assert align >= 0x10000 and (vaddr - offset) % 0x10000 == 0, [
            tuple(hex(v) for v in s) for s in segments]




def elf_sections(path):
    """{name: (file offset, size)} of the sections of a 64-bit little-endian ELF file."""
    import struct
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    # Elf64_Shdr: name, type, flags, addr, offset, size, ...
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx][4]

    def name(at):
        return data[names + at:data.index(b"\0", names + at)].decode()

    return {name(h[0]): (h[4], h[5]) for h in headers}, data


def test_the_code_workers_run_comes_first(venv):
    """gunicorn-cli/link/hot-text.ld places the functions workers run first in `.text`, so that
    a worker maps a few 64 KiB blocks of the extension's code rather than one for each
    function it runs (docs/benchmarks.md, "Memory"). The script records how much code its
    patterns placed in the section `.gunicorn.hot_text`: it must be there (the script was
    applied) and hold at least the workers' ~350 KiB (its patterns still name their functions;
    if not, run scripts/link-order again). A worker's resident code itself is not asserted: it
    also depends on the page cache, whose large folios are mapped whole."""
    import struct
    out = run([python_of(venv), "-c", "import gunicorn._native as n; print(n.__file__)"])
    assert out.returncode == 0, out
    sections, data = elf_sections(out.stdout.strip())
    assert ".gunicorn.hot_text" in sections, sorted(sections)
    offset, size = sections[".gunicorn.hot_text"]
    assert size == 8, size
    placed, = struct.unpack_from("<Q", data, offset)
    _, text_size = sections[".text"]
    assert 256 * 1024 <= placed < text_size, (placed, text_size)
