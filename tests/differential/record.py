"""Records what real gunicorn 27 answers to every replayable corpus case, per worker class,
into gunicorn27.json (the expectations of test_differential.py).

Usage: python tests/differential/record.py /path/to/venv-with-gunicorn-27
(scripts/test-package makes one: target/package/venvs/gunicorn27, with gevent.)
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import replay  # noqa: E402

OUT = Path(__file__).resolve().parent / "gunicorn27.json"


def main():
    venv = Path(sys.argv[1])
    gunicorn = [str(venv / "bin" / "gunicorn")]
    version = subprocess.run(gunicorn + ["--version"], capture_output=True, text=True).stdout
    recorded = {"gunicorn": version.strip(), "classes": {}}
    for worker_class in replay.CLASSES:
        recorded["classes"][worker_class] = replay.run_class(gunicorn, worker_class)
        print(worker_class, len(recorded["classes"][worker_class]), "cases", file=sys.stderr)
    OUT.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
