"""gunicorn's application classes: ``base`` (the Custom Application API), ``wsgiapp`` (the
command line) and ``pasterapp`` (PasteDeploy)."""
