"""The web wing: the FastAPI app every service serves (app.py), the dependencies its routes take
(deps.py), request limits, refusals, metrics and the feed."""
