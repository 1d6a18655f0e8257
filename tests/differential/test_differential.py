"""Our server against real gunicorn 27, case by case over the request corpus (tests/requests),
for every worker class: the statuses a client receives and whether the connection is closed
must be gunicorn 27's (recorded in gunicorn27.json by record.py), except the cases listed in
stricter.txt, where we are deliberately stricter and say why. Being more lenient than gunicorn
27 is never accepted.

Run by scripts/test-package with PKG_VENVS (our package installed, with gevent and eventlet).
"""

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import replay  # noqa: E402

RECORDED = json.loads((HERE / "gunicorn27.json").read_text())
# gunicorn 27 has no eventlet worker any more: ours is held to its gevent worker's answers.
REFERENCE_CLASS = {"sync": "sync", "gthread": "gthread", "gevent": "gevent", "eventlet": "gevent"}


def stricter():
    allowed = {}
    for line in (HERE / "stricter.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, why = line.partition(":")
        worker_class, case = head.split()
        assert why.strip(), "stricter.txt: %s needs a reason" % line
        allowed[(worker_class, case)] = why.strip()
    return allowed


def more_lenient(ours, theirs):
    """Ours served (2xx) or kept open what gunicorn refused or closed."""
    served = [s for s in ours["statuses"] if s < 400]
    their_served = [s for s in theirs["statuses"] if s < 400]
    return len(served) > len(their_served) or (theirs["closed"] and not ours["closed"])


def ours_command():
    venvs = [Path(v) for v in os.environ.get("PKG_VENVS", "").split(":") if v]
    if not venvs:
        pytest.fail("PKG_VENVS is empty: run through scripts/test")
    return [str(venvs[-1] / "bin" / "gunicorn")]


@pytest.mark.parametrize("worker_class", list(REFERENCE_CLASS))
def test_answers_match_gunicorn_27(worker_class):
    expected = RECORDED["classes"][REFERENCE_CLASS[worker_class]]
    got = replay.run_class(ours_command(), worker_class)
    allowed = stricter()
    missing = sorted(set(got) - set(expected))
    assert not missing, "not recorded (run tests/differential/record.py): %s" % missing
    problems = []
    for case, theirs in sorted(expected.items()):
        ours = got[case]
        if ours == theirs:
            continue
        why = allowed.get((worker_class, case)) or allowed.get(("*", case))
        if why and not more_lenient(ours, theirs):
            continue
        kind = "MORE LENIENT" if more_lenient(ours, theirs) else "differs"
        problems.append("%s %s: ours %s, gunicorn 27 %s" % (kind, case, ours, theirs))
    assert not problems, "%d of %d cases:\n%s" % (len(problems), len(expected),
                                                   "\n".join(problems))
