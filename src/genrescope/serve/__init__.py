"""The web app: ``genrescope serve`` and :func:`genrescope.serve.app.create_app`.

The page (``static/``) uploads a file or streams the microphone; the routes call the same
:class:`~genrescope.inference.predict.Predictor` as the CLI. Needs the ``web`` extra
(``pip install 'genrescope[web]'``). Importing this package imports no web framework.
"""
