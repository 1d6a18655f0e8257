"""``python -m gunicorn``: the same command as the ``gunicorn`` console script."""

from gunicorn.app.wsgiapp import run

if __name__ == "__main__":
    run()
