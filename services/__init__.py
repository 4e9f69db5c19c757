"""The three services. Each imports `shared`, never another service."""
