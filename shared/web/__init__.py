"""The web wing: the FastAPI app every service serves (app.py) and the dependencies its routes take
(deps.py)."""
